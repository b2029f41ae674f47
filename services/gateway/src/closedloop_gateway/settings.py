"""Settings of the gateway: the shared ones plus its own (CLOSEDLOOP_GATEWAY_<FIELD>)."""

from __future__ import annotations

from loopkit.accounts import AccountSettings


class GatewaySettings(AccountSettings):
    # `accounts` / `accounts_file` (from AccountSettings): the account registry every WeChat
    # service reads (docs/services/gateway.md, "Credentials"); the gateway needs its secrets.
    # Where WeChat is: the real hosts by default; `make run` and the tests point them at the
    # emulator. api: /cgi-bin and /sns; oauth: the authorize page; mp: QR code images.
    wechat_api_base: str = "https://api.weixin.qq.com"
    wechat_oauth_base: str = "https://open.weixin.qq.com"
    wechat_mp_base: str = "https://mp.weixin.qq.com"
    wecom_api_base: str = "https://qyapi.weixin.qq.com"
    # Per HTTP call to WeChat, in seconds; also the most a call may hold a worker thread.
    wechat_timeout_s: float = 10.0
    # Threads for WeChat calls (wechatpy is synchronous): the most calls in flight per replica.
    wechat_threads: int = 32
    # Access tokens are refreshed this long before they expire (WeChat gives 7200 s).
    token_refresh_ahead_s: float = 300.0
    # How long a replica may hold the refresh lease of an app (longer than a token fetch).
    token_lease_s: float = 30.0
    # How often the refresher looks for tokens about to expire.
    token_check_interval_s: float = 30.0
    # This replica's name in leases (empty: host name, process id and a random suffix).
    replica_id: str = ""
    # Per-API limits as JSON {"message/custom/send": {"daily": 500000, "per_second": 100}, ...};
    # merged over the defaults of docs/services/gateway.md.
    quotas: str = ""
    # The share of every limit (rate and daily count) the gateway uses, leaving headroom for
    # other tools on the same account and for clock differences.
    quota_headroom: float = 0.8
    # How long an API stays paused after a rate-limit answer (45011, 45033); a daily-limit
    # answer (45009) pauses it until the next day in China (UTC+8).
    rate_limit_pause_s: float = 60.0
    # How often a replica says it is alive: the per-second paces are split between the live
    # replicas, and a new replica makes no paced call for its first 1.5 heartbeats.
    pace_heartbeat_s: float = 1.0
    # Sends: worker concurrency, retries of transient errors, and their back-off.
    send_concurrency: int = 32
    send_max_attempts: int = 8
    send_retry_base_s: float = 1.0
    send_retry_max_s: float = 300.0
    send_poll_interval_s: float = 1.0
    # A send claimed by a replica that stopped answering is looked at again after this long.
    send_lease_s: float = 60.0
    # The official account's customer-service window.
    service_window_s: int = 48 * 3600
