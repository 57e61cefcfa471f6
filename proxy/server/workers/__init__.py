"""``workers: N`` (N > 1): one supervisor process and N shared-nothing workers on one listening socket.

* ``supervisor``: binds the public sockets, starts and restarts the
  workers, relays SIGHUP (reload) and SIGTERM (drain), owns the pid file,
  the admin listener and the login throttle;
* ``worker`` (run as ``python -m proxy.server.workers``): the single-process
  server (``proxy.server.lifecycle.serve``) on the inherited sockets;
* ``process``: one worker slot as the supervisor tracks it;
* ``channel``: the start-up spec and the JSON-lines protocol between them;
* ``throttle``: the login throttle shared over that channel;
* ``evict``: a digest deleted through one worker, evicted in all over it;
* ``aggregate`` and ``merge``: the admin listener and ``/metrics`` for all.

What stays per worker: the connection caps and request rate
(``limits.*``), the password cache, the digest cache (but a ``DELETE``
through one worker evicts in all) and the backend pool, each process's own
memory; see the README, *Workers on one host*.
"""

from proxy.server.workers.supervisor import supervise

__all__ = ["supervise"]
