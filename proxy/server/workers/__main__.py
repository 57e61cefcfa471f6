"""``python -m proxy.server.workers``: one worker process, started by the supervisor (never by hand)."""

from proxy.server.workers.worker import main

raise SystemExit(main())
