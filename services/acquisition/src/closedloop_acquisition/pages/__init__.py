"""The H5 landing page a person opens after scanning: its HTML and its WeChat sign-in."""
