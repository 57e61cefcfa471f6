"""``python -m proxy`` is the same command as ``registry-auth-proxy``."""

from proxy.cli import main

raise SystemExit(main())
