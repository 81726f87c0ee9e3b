"""The Prefect server scaled out, in the shape Prefect documents for teams ("How to scale
self-hosted Prefect"): API replicas started without background services, one process that
runs the services, PostgreSQL for state, Redis (prefect-redis) for events, the background
services' coordination and concurrency leases, and a load balancer in front.

The balancer is HAProxy, from Debian's packages. Prefect's client, the workers on every host,
the front page and Prefect's UI each take one API address (PREFECT_API_URL): HAProxy listens
on that address, asks each replica's ``/api/health`` every second, and sends calls only to
replicas that answer. So nothing else changes when a replica is added or dies, and a job's
process never needs to know there are several. (NGINX would do as well; HAProxy's active
health checks come in its free build, and it passes the event stream's websockets through.)
"""
from __future__ import annotations

import os
import shutil
import subprocess

from flows.errors import P4IntegError
from flows.polling import poll_until
from flows.settings import free_port, server_host, server_port, write_private

from . import processes

REPLICA = "server-{}"  # process names, each with its pid file and log under run/
SERVICES = "services"
BALANCER = "balancer"
REDIS_VAR = "P4INTEG_REDIS_URL"
MIN_REPLICAS, MAX_REPLICAS = 1, 8


class ScaledOutRefused(P4IntegError, ValueError):
    """What a scaled-out server needs is missing; nothing was started."""


def check(replicas: int) -> None:
    """Everything a scaled-out server needs, checked before anything starts."""
    if not MIN_REPLICAS <= replicas <= MAX_REPLICAS:
        raise ScaledOutRefused(f"--replicas {replicas}: give {MIN_REPLICAS} to {MAX_REPLICAS}")
    if replicas == 1:
        return
    missing = []
    if not os.environ.get("P4INTEG_DATABASE_URL", "").startswith("postgresql"):
        missing.append("P4INTEG_DATABASE_URL: set it to a PostgreSQL database, e.g. "
                       "postgresql+asyncpg://prefect@127.0.0.1:5432/prefect (SQLite serves one server only)")
    if not os.environ.get(REDIS_VAR, "").startswith(("redis://", "rediss://")):
        missing.append(f"{REDIS_VAR}: set it to a Redis database, e.g. redis://127.0.0.1:6379/0")
    if shutil.which("haproxy") is None:
        missing.append("haproxy: not on PATH; install Debian's package (apt-get install haproxy)")
    try:
        import prefect_redis  # noqa: F401 - only its presence is checked here
    except ImportError:
        missing.append("prefect-redis: not installed; pip install 'p4-integration[team]'")
    if missing:
        raise ScaledOutRefused(f"--replicas {replicas} needs: " + "; ".join(missing))


def redis_env(url: str) -> dict[str, str]:
    """Prefect's settings that put messaging, event ordering, leases and the services'
    coordination (Docket) on the Redis database at ``url``."""
    return {
        "PREFECT_MESSAGING_BROKER": "prefect_redis.messaging",
        "PREFECT_MESSAGING_CACHE": "prefect_redis.messaging",
        "PREFECT_SERVER_EVENTS_CAUSAL_ORDERING": "deployments.event_ordering_redis",
        "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": "prefect_redis.lease_storage",
        "PREFECT_REDIS_MESSAGING_URL": url,
        "PREFECT_SERVER_DOCKET_URL": url,
        # Migrations run once, before the replicas start, not by each of them at once.
        "PREFECT_API_DATABASE_MIGRATE_ON_START": "false",
    }


def server_side(name: str) -> bool:
    """A process of the server itself (stopped last, after what uses it)."""
    return name in ("server", SERVICES, BALANCER) or name.startswith(REPLICA.format(""))


def replica_names() -> list[str]:
    return sorted(n for n in processes.running() if n.startswith(REPLICA.format("")))


def balancer_config(replica_ports: list[int]) -> str:
    servers = "\n".join(f"    server r{i} 127.0.0.1:{p} check" for i, p in enumerate(replica_ports, 1))
    return f"""# Written by p4integ up --replicas: the one API address in front of the replicas.
global
    maxconn 4096
defaults
    mode http
    timeout connect 2s
    # Long enough for the event stream's websockets and the longest API call.
    timeout client 1h
    timeout server 1h
    timeout tunnel 1h
    # A call that could not reach a replica goes to another one.
    retries 3
    option redispatch
frontend api
    bind {server_host()}:{server_port()}
    default_backend replicas
backend replicas
    balance leastconn
    option httpchk GET /api/health
    http-check expect status 200
    default-server inter 1s fall 2 rise 1
{servers}
"""


def start(replicas: int, env: dict[str, str]) -> None:
    """Migrate once, then the replicas, the services process and the balancer (``env``: the
    single server's environment). Returns once the API answers through the balancer; on any
    failure, stops what it started (all or nothing) and raises."""
    try:
        _start(replicas, env)
    except BaseException:
        for name in [n for n in processes.running() if server_side(n)]:
            processes.stop(name)
        raise


def _start(replicas: int, env: dict[str, str]) -> None:
    env = {**env, **redis_env(os.environ[REDIS_VAR])}  # env names the database (flows.settings.prefect_env)
    done = subprocess.run([*processes.PREFECT, "server", "database", "upgrade", "-y"], env=env,
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
        raise RuntimeError(f"'prefect server database upgrade -y' exited with {done.returncode}:\n{tail}")
    ports = [free_port() for _ in range(replicas)]
    for i, port in enumerate(ports, 1):
        # One after another: each replica registers Prefect's block types as it starts, and two
        # doing so at once collide on the same rows (the second exits).
        name = REPLICA.format(i)
        processes.start_process(name, [*processes.PREFECT, "server", "start", "--host", "127.0.0.1",
                                       "--port", str(port), "--no-services", "--analytics-off"], env)
        url = f"http://127.0.0.1:{port}/api"
        if not poll_until(lambda u=url: processes.healthy(u), 90, 0.3):
            raise RuntimeError(f"API replica {i} ({url}) did not answer within 90 s: see "
                               f"{processes.run_dir() / f'{name}.log'}")
    processes.start_process(SERVICES, [*processes.PREFECT, "server", "services", "start"], env)
    config = processes.run_dir() / "balancer.cfg"
    write_private(config, balancer_config(ports))
    processes.start_process(BALANCER, ["haproxy", "-db", "-f", str(config)], env)
    processes.wait_healthy(process=BALANCER)
