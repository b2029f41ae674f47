"""WeChat and WeCom surfaces shared by the services that face them: callback crypto, safe XML,
and the one interface every outbound message goes through."""
