"""The user files the proxy is configured with: htpasswd, AuthGroupFile and the robots file.

Why a package: the running proxy reads these files and the ``user``/``group``
CLI edits them, and the two once used separate line parsers that disagreed
(``mark :HASH`` was user ``"mark "`` to one and ``mark`` to the other). Here
each format has exactly one ``parse_line``, used by its reader and by every
edit, so the proxy and the CLI always agree about which line means what.

Modules: ``htpasswd``, ``groups`` and ``robots`` (parser, reader, pure line edits),
``hashing`` (password checks, Apache bcrypt, constant dummy hashes),
``atomic`` (locked atomic rewrite used by the editor), ``store`` (the
re-reading, caching ``UserStore`` the proxy asks). No aiohttp: this is ``auth``.
"""

from auth.userfiles.groups import GroupData, parse_groups
from auth.userfiles.htpasswd import HtpasswdData, parse_htpasswd
from auth.userfiles.store import Snapshot, UserStore

__all__ = ["GroupData", "HtpasswdData", "Snapshot", "UserStore", "parse_groups", "parse_htpasswd"]
