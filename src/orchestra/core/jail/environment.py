"""The environment a run's processes get: an allowlist, never the user's whole environment.

Kept: PATH, the locale (LANG, LANGUAGE, LC_*), the terminal's name and colour settings, TZ, the proxy and
certificate settings (how this machine reaches the network); then a
private HOME, TMPDIR and XDG directories of the run; orchestra's own ORCHESTRA_* variables; the
variables the score declares (`env = [...]` on the agent or the spec); and, for a cli agent that
calls its model itself, its `api_key_env`. Gates get the spec's declared variables, never a key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from orchestra.core.jail.jail import Jail

KEPT = ("PATH", "LANG", "LANGUAGE", "TERM", "COLORTERM", "NO_COLOR", "FORCE_COLOR", "TZ",
        # How this machine reaches the network: proxies and extra certificate authorities.
        "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy", "no_proxy",
        "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS")


def jail_environment(jail: Jail, environ: Mapping[str, str], declared: Iterable[str] = (),
                     orchestra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a process in jail: the allowlist, the run's private places, what is declared."""
    env = {name: value for name, value in environ.items() if name in KEPT or name.startswith("LC_")}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    for name in declared:
        if name in environ:
            env[name] = environ[name]
    home = str(jail.home)
    env.update(HOME=home, TMPDIR=str(jail.tmp), TMP=str(jail.tmp), TEMP=str(jail.tmp),
               XDG_CONFIG_HOME=f"{home}/.config", XDG_CACHE_HOME=f"{home}/.cache",
               XDG_DATA_HOME=f"{home}/.local/share", XDG_STATE_HOME=f"{home}/.local/state")
    env.update(jail.git_env())
    env.update(jail.extra_env)
    env.update(orchestra or {})
    return env
