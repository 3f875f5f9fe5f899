#!/usr/bin/env python3
"""A scaled revocation run: one Redis, a million revoked keys, thousands of
extra subscribers, three real jwtgate replicas.

For each subscriber count: Redis (alone on --redis-cpu) is loaded with
--keys revoked keys in jwtgate's layout; one process (this script, `hold`
mode) opens the extra subscribers and reads and discards what they get; then
--logouts rounds each mint a token, warm it on replicas two and three (each
caches "not revoked" for 5 minutes), log it out on replica one, and poll two
and three back to back until they refuse it. Reported per count: logout
status and latency, propagation (from the logout's answer to the refusal on
each replica), when the last extra subscriber had the message, Redis CPU per
revocation (utime + stime of redis-server over the rounds), Redis memory per
revoked key, and Redis's own usec per call of the commands involved.

Fan-out designs (--fanout):
  pubsub   the extra subscribers SUBSCRIBE to <prefix>revocations (what
           jwtgate does)
  bcast    they use RESP3 client-side caching in broadcast mode instead
           (HELLO 3 + CLIENT TRACKING ON BCAST PREFIX <prefix>): Redis
           pushes an invalidation of each written key to every one of them
  sharded  Redis Cluster of --shards masters; they SSUBSCRIBE to the channel
           on the node owning its slot (sharded pub/sub, Redis 7), and this
           script SPUBLISHes a message of the same size there after each
           logout (jwtgate itself publishes classic: its three replicas hear
           of it that way)
  cluster  the same cluster, the extra subscribers SUBSCRIBE (classic),
           spread over all nodes
  replica  a master and one replica (replicaof); the extra subscribers and
           the three replicas (revocation.redis.subscribe_nodes) SUBSCRIBE
           on the replica, which gets every PUBLISH through replication;
           writes, look-ups and log reads stay on the master
  track    (needs --holder) no extra subscriptions: each extra client
           turns on RESP3 key-based tracking (CLIENT TRACKING ON) and reads
           10 of the preloaded keys, the way a replica tracking what it
           cached would; Redis then notifies only the clients that read a
           written key (none of the fresh tokens logged out here). Reported:
           Redis CPU per tracked read and tracking memory per client
  read     the same reads without tracking, the baseline for `track`

Not part of the test suite: needs redis-server (and redis-cli), a release
jwtgate, `ulimit -n` above twice the largest count. Stdlib only.

  bench/scale.py --jwtgate target/release/jwtgate --counts 1000,5000,10000
"""

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

ISSUER = "jwtgate-scale"
AUDIENCE = "scale-api"
KID = "k1"
PREFIX = "jwtgate:"
CHANNEL = PREFIX + "revocations"
TICKS = os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------ helpers
def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_cluster_port():
    """A free port whose cluster bus port (+10000) is free too."""
    import random
    while True:
        port = random.randint(20000, 40000)
        try:
            for p in (port, port + 10000):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
            return port
        except OSError:
            continue


def cpu_split(pid):
    """(utime, stime) of a process, seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICKS, int(fields[12]) / TICKS


def pct(values, p):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def issuer_tag():
    return hashlib.sha256(ISSUER.encode()).hexdigest()[:16]


def mint(secret, jti):
    now = int(time.time())
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": KID}).encode())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "user-" + jti[:8], "jti": jti, "iat": now, "exp": now + 3600}
    payload = b64(json.dumps(claims).encode())
    signature = b64(hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest())
    return f"{header}.{payload}.{signature}"


def resp(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


async def read_reply(reader):
    """Reads (and drops) one RESP2 reply."""
    line = await reader.readline()
    kind, rest = line[:1], line[1:-2]
    if kind == b"$" and int(rest) >= 0:
        await reader.readexactly(int(rest) + 2)
    elif kind == b"*":
        for _ in range(max(0, int(rest))):
            await read_reply(reader)
    elif kind == b"-":
        raise RuntimeError(rest.decode())


class Redis:
    """A tiny blocking RESP2 client for set-up and INFO."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.file = self.sock.makefile("rb")

    def call(self, *args):
        self.sock.sendall(resp(*args))
        return self._read()

    def _read(self):
        line = self.file.readline()
        kind, rest = line[:1], line[1:-2]
        if kind in (b"+", b":"):
            return rest.decode() if kind == b"+" else int(rest)
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.file.read(n + 2)[:-2]
            return data.decode(errors="replace")
        if kind == b"*":
            return [self._read() for _ in range(int(rest))]
        raise RuntimeError(f"unexpected reply {line!r}")

    def info(self, section):
        text = self.call("INFO", section)
        return dict(line.split(":", 1) for line in text.splitlines() if ":" in line and not line.startswith("#"))


# ------------------------------------------------------------- hold mode
async def hold(args):
    """Opens --count subscribers and reads and discards; prints `ready`,
    then, at each newline on stdin, one JSON line: messages received since
    the last report and the monotonic time of the last arrival."""
    targets = [tuple(t.rsplit(":", 1)) for t in args.targets.split(",")]
    state = {"messages": 0, "last": 0.0, "bytes": 0}

    async def one(i):
        host, port = targets[i % len(targets)]
        reader, writer = await asyncio.open_connection(host, int(port))
        if args.mode == "bcast":
            writer.write(resp("HELLO", "3") + resp("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", PREFIX + "jti:"))
        elif args.mode == "sharded":
            writer.write(resp("SSUBSCRIBE", CHANNEL))
        else:
            writer.write(resp("SUBSCRIBE", CHANNEL))
        await writer.drain()
        return reader, writer

    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    # Half, then (once the driver has subscribed the replicas) the rest:
    # Redis writes a message to its subscribers in an order of its own, and
    # the replicas measured should sit in the middle of it, not at an end.
    conns, half = [], args.count // 2
    for lo, hi in ((0, half), (half, args.count)):
        for start in range(lo, hi, 500):
            conns += await asyncio.gather(*(one(i) for i in range(start, min(hi, start + 500))))
        if lo == 0:
            print("half", flush=True)
            await stdin.readline()

    async def drain(reader):
        while True:
            data = await reader.read(65536)
            if not data:
                return
            now = time.monotonic()
            state["bytes"] += len(data)
            # One message per push frame: count the frames' markers.
            state["messages"] += data.count(b"message\r\n") + data.count(b"invalidate\r\n")
            state["last"] = now

    tasks = [asyncio.create_task(drain(r)) for r, _ in conns]
    print("ready", flush=True)
    while await stdin.readline():
        print(json.dumps({"messages": state["messages"], "last": state["last"]}), flush=True)
        state["messages"] = 0
    for t in tasks:
        t.cancel()


# ------------------------------------------------------------- the driver
class Http:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, port):
        self.port = port
        self.reader = self.writer = None

    async def request(self, method, path, token):
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.writer.write(
            f"{method} {path} HTTP/1.1\r\nHost: app\r\nAuthorization: Bearer {token}\r\nContent-Length: 0\r\n\r\n".encode()
        )
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length, close = 0, False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
            if name.lower() == "connection" and "close" in value.lower():
                close = True
        body = await self.reader.readexactly(length) if length else b""
        if close:
            self.writer.close()
            self.writer = None
        return status, body


async def upstream(reader, writer):
    """The app: 200 to everything, keep-alive."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"(?i)content-length:\s*(\d+)", head)
            if length:
                await reader.readexactly(int(length.group(1)))
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
        writer.close()


def start(cmd, cpu, log=None, **kw):
    if log is not None:
        kw.update(stdout=log, stderr=subprocess.STDOUT)
    return subprocess.Popen(["taskset", "-c", str(cpu)] + cmd, **kw)


def wait_port(port, proc, what):
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{what} exited ({proc.returncode})")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"{what} did not listen on {port}")


class Deployment:
    """Redis (one server or a cluster), its keys and the extra subscribers."""

    def __init__(self, args, tmp):
        self.args, self.tmp, self.procs = args, tmp, []
        try:
            self._start()
        except BaseException:  # sys.exit too: never leave servers behind
            self.stop()
            raise

    def _start(self):
        args, tmp = self.args, self.tmp
        self.cluster = args.fanout in ("sharded", "cluster")
        if self.cluster:
            self.ports = [free_cluster_port() for _ in range(args.shards)]
        else:
            self.ports = [free_port() for _ in range(2 if args.fanout == "replica" else 1)]
        for port in self.ports:
            cmd = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                   "--maxclients", str(args.max_count + 2000), "--dir", tmp, "--dbfilename", f"{port}.rdb"]
            if self.cluster:
                cmd += ["--cluster-enabled", "yes", "--cluster-config-file", f"{tmp}/nodes-{port}.conf"]
            if args.fanout == "replica" and port != self.ports[0]:
                cmd += ["--replicaof", "127.0.0.1", str(self.ports[0])]
            proc = start(cmd, args.redis_cpu, open(f"{tmp}/redis-{port}.log", "w"))
            self.procs.append(proc)
            wait_port(port, proc, "redis-server")
        if self.cluster:
            nodes = [f"127.0.0.1:{p}" for p in self.ports]
            subprocess.run(["redis-cli", "--cluster", "create", *nodes, "--cluster-yes"], check=True,
                           stdout=subprocess.DEVNULL)
            deadline = time.monotonic() + 30
            while any("cluster_state:ok" not in Redis(p).call("CLUSTER", "INFO") for p in self.ports):
                if time.monotonic() > deadline:
                    sys.exit("cluster did not become ok")
                time.sleep(0.1)
        self.clients = {p: Redis(p) for p in self.ports}
        if args.fanout == "replica":
            deadline = time.monotonic() + 30
            while self.clients[self.ports[1]].info("replication").get("master_link_status") != "up":
                if time.monotonic() > deadline:
                    sys.exit("replica did not sync")
                time.sleep(0.1)

    def redis_url(self):
        """Where the three replicas go: the master (or the cluster)."""
        if self.cluster:
            return "cluster_nodes: [" + ", ".join(f"redis://127.0.0.1:{p}" for p in self.ports) + "]"
        if self.args.fanout == "replica":
            return (f'url: "redis://127.0.0.1:{self.ports[0]}/0", '
                    f'subscribe_nodes: ["redis://127.0.0.1:{self.ports[1]}/0"]')
        return f'url: "redis://127.0.0.1:{self.ports[0]}/0"'

    def used_memory(self):
        return sum(int(c.info("memory")["used_memory"]) for c in self.clients.values())

    def cpu(self, which=None):
        """utime + stime of the Redis processes (or one of them), seconds."""
        return sum(sum(cpu_split(p.pid)) for i, p in enumerate(self.procs) if which in (None, i))

    def sys_cpu(self):
        return sum(cpu_split(p.pid)[1] for p in self.procs)

    def load_keys(self, count):
        """SET <prefix>jti:<tag>:<jti> 1 EXAT <t> for `count` fresh jtis (redis-cli --pipe, per node
        by slot under a cluster: -c is not supported by --pipe, so keys go where CLUSTER KEYSLOT says)."""
        before = self.master_memory()
        exat = int(time.time()) + 86400
        tag = issuer_tag()
        if not self.cluster:  # a replica gets them through replication
            targets = {self.ports[0]: open(f"{self.tmp}/keys-{self.ports[0]}.resp", "wb")}
            route = lambda key: self.ports[0]
        else:
            slots = {}
            for start_slot, end_slot, master, *_ in self.clients[self.ports[0]].call("CLUSTER", "SLOTS"):
                slots[(int(start_slot), int(end_slot))] = int(master[1])
            targets = {p: open(f"{self.tmp}/keys-{p}.resp", "wb") for p in self.ports}

            def route(key):
                slot = crc16_slot(key)
                return next(port for (a, b), port in slots.items() if a <= slot <= b)
        for i in range(count):
            key = f"{PREFIX}jti:{tag}:preloaded-{i:08d}"
            targets[route(key)].write(resp("SET", key, "1", "EXAT", exat))
        for port, f in targets.items():
            f.close()
            with open(f.name, "rb") as data:
                subprocess.run(["redis-cli", "-p", str(port), "--pipe"], stdin=data, check=True,
                               stdout=subprocess.DEVNULL)
        if self.args.fanout == "replica":
            deadline = time.monotonic() + 60
            while self.clients[self.ports[1]].call("DBSIZE") < count:
                if time.monotonic() > deadline:
                    sys.exit("replica did not get the keys")
                time.sleep(0.2)
        return (self.master_memory() - before) / count

    def master_memory(self):
        ports = self.ports if self.cluster else self.ports[:1]
        return sum(int(self.clients[p].info("memory")["used_memory"]) for p in ports)

    def subscriber_targets(self):
        if self.args.fanout == "sharded":
            slot = crc16_slot(CHANNEL)
            for start_slot, end_slot, master, *_ in self.clients[self.ports[0]].call("CLUSTER", "SLOTS"):
                if int(start_slot) <= slot <= int(end_slot):
                    return f"127.0.0.1:{master[1]}"
        if self.args.fanout == "replica":
            return f"127.0.0.1:{self.ports[1]}"
        return ",".join(f"127.0.0.1:{p}" for p in self.ports)

    def subscribers(self):
        if self.args.fanout == "sharded":
            return sum(int(c.call("PUBSUB", "SHARDNUMSUB", CHANNEL)[1]) for c in self.clients.values())
        if self.args.fanout == "bcast":
            return int(self.clients[self.ports[0]].info("clients").get("tracking_clients", 0))
        if self.args.fanout in ("track", "read"):
            return int(self.clients[self.ports[0]].call("PUBSUB", "NUMSUB", CHANNEL)[1])
        return sum(int(c.call("PUBSUB", "NUMSUB", CHANNEL)[1]) for c in self.clients.values())

    def commandstats(self):
        stats = {}
        for c in self.clients.values():
            for name, value in c.info("commandstats").items():
                fields = dict(kv.split("=") for kv in value.split(","))
                entry = stats.setdefault(name.removeprefix("cmdstat_"), [0, 0])
                entry[0] += int(fields["calls"])
                entry[1] += int(fields["usec"])
        return stats

    def reset_stats(self):
        for c in self.clients.values():
            c.call("CONFIG", "RESETSTAT")

    def stop(self):
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            p.wait()


def crc16_slot(key):
    """Redis Cluster key slot (CRC16-XMODEM mod 16384, with hash tags)."""
    k = key.encode()
    start = k.find(b"{")
    if start >= 0:
        end = k.find(b"}", start + 1)
        if end > start + 1:
            k = k[start + 1:end]
    crc = 0
    for byte in k:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc % 16384


async def run_count(args, count, tmp, secret_file, secret, up_port):
    dep = Deployment(args, tmp)
    procs = []
    try:
        bytes_per_key = dep.load_keys(args.keys) if args.keys else float("nan")
        memory_before_subscribers = dep.used_memory()
        # Niced: on the replicas' core, the replicas come first.
        if args.holder:
            key_prefix = PREFIX + (f"jti:{issuer_tag()}:preloaded-" if args.fanout in ("track", "read") else "jti:")
            hold_cmd = [args.holder, str(count), args.fanout, dep.subscriber_targets(), CHANNEL, key_prefix]
        else:
            hold_cmd = [sys.executable, os.path.abspath(__file__), "hold", "--count", str(count), "--mode",
                        args.fanout, "--targets", dep.subscriber_targets()]
        setup_cpu, setup_memory = dep.cpu(), dep.used_memory()
        holder = start(["nice", "-n", "19"] + hold_cmd, args.load_cpu,
                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) if count else None
        if holder:
            procs.append(holder)
            line = holder.stdout.readline()
            if line.strip() != "half":
                sys.exit(f"subscriber holder failed: {line!r}")
        gates = []
        for i in range(3):
            cfg = f"{tmp}/gate-{i}.yaml"
            with open(cfg, "w") as f:
                f.write(f"""listen: 127.0.0.1:0
upstream: {{ url: "http://127.0.0.1:{up_port}" }}
jwt:
  issuers:
    - {{ issuer: {ISSUER}, audiences: [{AUDIENCE}], algorithms: [HS256], keys: [{{ kid: {KID}, secret_file: "{secret_file}" }}] }}
revocation:
  store: redis
  redis: {{ {dep.redis_url()}, key_prefix: "{PREFIX}" }}
  cache: {{ not_revoked_ttl: 300s }}
logout: {{ path: /logout }}
access_log: false
""")
            out = open(f"{tmp}/gate-{i}.out", "w+")
            proc = start([args.jwtgate, "run", "-c", cfg], args.load_cpu, out)
            procs.append(proc)
            gates.append((proc, out))
        ports = []
        for proc, out in gates:
            deadline = time.monotonic() + 20
            while True:
                out.seek(0)
                m = re.search(r"^jwtgate listening on http://127\.0\.0\.1:(\d+)", out.read(), re.M)
                if m:
                    ports.append(int(m.group(1)))
                    break
                if proc.poll() is not None or time.monotonic() > deadline:
                    out.seek(0)
                    sys.exit(f"jwtgate did not start:\n{out.read()}")
                time.sleep(0.05)
        async def subscribed(want):
            deadline = time.monotonic() + 60
            if args.fanout in ("track", "read"):
                want = 3  # the holder says when its clients have read
            while dep.subscribers() + (3 if args.fanout in ("bcast", "sharded") else 0) < want:
                if time.monotonic() > deadline:
                    sys.exit(f"only {dep.subscribers()} subscribers of {want}")
                await asyncio.sleep(0.1)

        await subscribed(count // 2 + 3)
        if holder:
            holder.stdin.write("\n")
            holder.stdin.flush()
            line = holder.stdout.readline()
            if line.strip() != "ready":
                sys.exit(f"subscriber holder failed: {line!r}")
        await subscribed(count + 3)
        setup_cpu, setup_memory = dep.cpu() - setup_cpu, dep.used_memory() - setup_memory

        bytes_per_subscriber = (dep.used_memory() - memory_before_subscribers) / max(1, count)
        one, two, three = (Http(p) for p in ports)
        shard_publisher = None
        if args.fanout == "sharded":
            host, port = dep.subscriber_targets().rsplit(":", 1)
            shard_reader, shard_publisher = await asyncio.open_connection(host, int(port))

            async def discard():
                while await shard_reader.read(65536):
                    pass

            asyncio.create_task(discard())
        statuses, logout_ms, propagation_ms, last_sub_ms, unrefused, warm_503 = [], [], [], [], 0, 0
        from_request_ms = []
        for i in range(args.warmup + args.logouts):
            measured = i >= args.warmup
            if i == args.warmup:
                dep.reset_stats()
                cpu_before, sys_before, wall_before = dep.cpu(), dep.sys_cpu(), time.monotonic()
                master_before = dep.cpu(0)
                if holder:
                    holder.stdin.write("\n")
                    holder.stdin.flush()
                    holder.stdout.readline()
            token = mint(secret, uuid.uuid4().hex)
            for gate in (two, three):
                for _ in range(50):
                    status, _ = await gate.request("GET", "/api/warm", token)
                    if status == 200:
                        break
                    if status != 503:
                        sys.exit(f"control: a live token got {status}")
                    warm_503 += measured
                else:
                    sys.exit("control: a live token got 503 fifty times")
            sent = time.monotonic()
            status, _ = await one.request("POST", "/logout", token)
            answered = time.monotonic()
            if shard_publisher:
                shard_publisher.write(resp("SPUBLISH", CHANNEL, "x" * 160))

            async def until_refused(gate):
                while time.monotonic() - answered < args.poll_deadline:
                    status, _ = await gate.request("GET", "/api/poll", token)
                    if status == 401:
                        return time.monotonic()
                return None

            refused = await asyncio.gather(until_refused(two), until_refused(three))
            if holder:
                holder.stdin.write("\n")
                holder.stdin.flush()
                report = json.loads(holder.stdout.readline())
                if "ago" in report:
                    report["last"] = time.monotonic() - report["ago"]
            if not measured:
                continue
            statuses.append(status)
            logout_ms.append((answered - sent) * 1000)
            for r in refused:
                if r is None:
                    unrefused += 1
                else:
                    propagation_ms.append((r - answered) * 1000)
                    from_request_ms.append((r - sent) * 1000)
            if holder and report["messages"]:
                last_sub_ms.append((report["last"] - answered) * 1000)
            await asyncio.sleep(args.gap)
        cpu_used = dep.cpu() - cpu_before
        sys_used = dep.sys_cpu() - sys_before
        master_used = dep.cpu(0) - master_before
        wall = time.monotonic() - wall_before

        # New tokens: each one's first request is a store look-up (one MGET).
        lookups_cpu = dep.cpu()
        tokens = [mint(secret, uuid.uuid4().hex) for _ in range(args.lookups)]
        lookup_started = time.monotonic()

        async def lookups(part):
            conn = Http(ports[1])
            for token in part:
                status, _ = await conn.request("GET", "/api/new", token)
                if status != 200:
                    sys.exit(f"control: a new token got {status}")

        await asyncio.gather(*(lookups(tokens[i::16]) for i in range(16)))
        lookup_wall = time.monotonic() - lookup_started
        lookups_cpu = dep.cpu() - lookups_cpu

        # Every replica reads the announcement log once per heartbeat (an
        # empty read when nothing was missed): what each read costs Redis.
        log_reads_cpu = log_reads_wall = 0.0
        log_key = CHANNEL + ":log"
        tail = dep.clients[dep.ports[0]].call("XREVRANGE", log_key, "+", "-", "COUNT", "1") if not dep.cluster else []
        if tail and args.log_reads:  # no log before issue 15, none read here under a cluster
            last = tail[0][0]
            read = resp("XRANGE", log_key, f"({last}", "+", "COUNT", 500) + resp("XRANGE", log_key, last, last)

            async def log_reads(n):
                reader, writer = await asyncio.open_connection("127.0.0.1", dep.ports[0])
                for _ in range(n):
                    writer.write(read)
                    await read_reply(reader)
                    await read_reply(reader)
                writer.close()

            log_reads_cpu, started = dep.cpu(0), time.monotonic()
            await asyncio.gather(*(log_reads(args.log_reads // 16) for _ in range(16)))
            log_reads_wall = time.monotonic() - started
            log_reads_cpu = dep.cpu(0) - log_reads_cpu
        stats = dep.commandstats()
        return {
            "count": count, "fanout": args.fanout, "logouts": len(statuses),
            "ok": sum(1 for s in statuses if s == 200),
            "statuses": {str(s): statuses.count(s) for s in sorted(set(statuses))},
            "logout_ms": {p: pct(logout_ms, p) for p in (50, 99, 100)},
            "propagation_ms": {p: pct(propagation_ms, p) for p in (50, 99, 100)},
            "from_request_ms": {p: pct(from_request_ms, p) for p in (50, 99, 100)},
            "lookups_503_during_rounds": warm_503,
            "redis_sys_share": sys_used / cpu_used if cpu_used else float("nan"),
            "first_node_cpu_ms_per_revocation": master_used * 1000 / max(1, len(statuses)),
            "unrefused": unrefused,
            "last_subscriber_ms": {p: pct(last_sub_ms, p) for p in (50, 99)},
            "redis_cpu_ms_per_revocation": cpu_used * 1000 / max(1, len(statuses)),
            "redis_cpu_share": cpu_used / wall,
            "bytes_per_key": bytes_per_key,
            "bytes_per_subscriber": bytes_per_subscriber,
            "setup_redis_cpu_us_per_client": setup_cpu * 1e6 / max(1, count),
            "setup_bytes_per_client": setup_memory / max(1, count),
            "tracking_keys": int(dep.clients[dep.ports[0]].info("clients").get("tracking_clients", 0)),
            "tracking_total_keys": int(dep.clients[dep.ports[0]].info("stats").get("tracking_total_keys", 0)),
            "lookups": args.lookups,
            "lookups_per_s": args.lookups / lookup_wall if args.lookups else 0,
            "redis_cpu_us_per_lookup": lookups_cpu * 1e6 / max(1, args.lookups),
            "log_reads_per_s": args.log_reads / log_reads_wall if log_reads_wall else 0,
            "master_cpu_us_per_log_read": log_reads_cpu * 1e6 / max(1, args.log_reads) if log_reads_wall else 0,
            "usec_per_call": {k: round(v[1] / v[0], 1) for k, v in stats.items() if v[0]},
        }
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        dep.stop()


def table(results):
    lines = ["| extra subscribers | fan-out | logouts answered 200 | logout p50 / p99 / max (ms) | "
             "propagation from the 200, p50 / p99 / max (ms) | from the logout request (ms) | not refused in time | last extra subscriber p50 / p99 (ms) | "
             "Redis CPU per revocation (ms), all / master or first node | look-ups 503 in the rounds | "
             "usec/call publish / exec / spublish |",
             "|---:|---|---:|---|---|---|---:|---|---|---:|---|"]
    for r in results:
        f = lambda d: " / ".join(f"{d[k]:.1f}" for k in d)
        u = r["usec_per_call"]
        answers = ", ".join(f"{n}x {status}" for status, n in r["statuses"].items())
        lines.append(
            f"| {r['count']:,} | {r['fanout']} | {100 * r['ok'] / max(1, r['logouts']):.0f} % ({answers}) | "
            f"{f(r['logout_ms'])} | {f(r['propagation_ms'])} | {f(r['from_request_ms'])} | {r['unrefused']} | "
            f"{f(r['last_subscriber_ms'])} | {r['redis_cpu_ms_per_revocation']:.1f} / "
            f"{r['first_node_cpu_ms_per_revocation']:.1f} | {r['lookups_503_during_rounds']} | "
            f"{u.get('publish', '-')} / {u.get('exec', '-')} / "
            f"{u.get('spublish', '-')} |")
    lines += ["", "| extra subscribers | fan-out | Redis bytes per revoked key | Redis bytes per subscriber | "
              "new-token look-ups (req/s through one replica) | Redis CPU per look-up (us) | usec/call mget | "
              "master CPU per empty log read (us) |",
              "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r['count']:,} | {r['fanout']} | {r['bytes_per_key']:.0f} | {r['bytes_per_subscriber']:.0f} | "
                     f"{r['lookups_per_s']:.0f} | {r['redis_cpu_us_per_lookup']:.1f} | "
                     f"{r['usec_per_call'].get('mget', '-')} | {r['master_cpu_us_per_log_read']:.1f} |")
    return "\n".join(lines)


async def drive(args):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.max_count + 4096
    if hard < need:
        sys.exit(f"ulimit -Hn is {hard}; {need} needed for {args.max_count} subscribers")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    for tool in ("redis-server", "redis-cli", "taskset"):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found")
    tmp = tempfile.mkdtemp(prefix="jwtgate-scale-")
    secret = base64.b64encode(os.urandom(36))
    secret_file = f"{tmp}/hs256.secret"
    with open(secret_file, "wb") as f:
        f.write(secret)
    os.chmod(secret_file, 0o600)
    up_port = free_port()
    server = await asyncio.start_server(upstream, "127.0.0.1", up_port)
    results = []
    try:
        for count in args.count_list:
            print(f"# {args.fanout}: {count} extra subscribers ...", file=sys.stderr, flush=True)
            r = await run_count(args, count, tmp, secret_file, secret, up_port)
            print(json.dumps(r), flush=True)
            results.append(r)
    finally:
        server.close()
        shutil.rmtree(tmp, ignore_errors=True)
    print(table(results))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    h = sub.add_parser("hold", help=argparse.SUPPRESS)
    h.add_argument("--count", type=int, required=True)
    h.add_argument("--mode", default="pubsub")
    h.add_argument("--targets", required=True)
    parser.add_argument("--jwtgate", default="target/release/jwtgate")
    parser.add_argument("--counts", default="1000,5000,10000")
    parser.add_argument("--fanout", choices=["pubsub", "bcast", "sharded", "cluster", "replica", "track", "read"],
                        default="pubsub")
    parser.add_argument("--shards", type=int, default=3)
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--logouts", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--log-reads", type=int, default=32000, help="empty announcement-log reads sent")
    parser.add_argument("--holder", help="the extra subscribers' process: target/release/examples/scale_subscribers "
                        "(default: this script's own asyncio holder, several times the CPU per message)")
    parser.add_argument("--lookups", type=int, default=20000, help="new tokens sent after the logouts")
    parser.add_argument("--gap", type=float, default=0.02, help="seconds between rounds")
    parser.add_argument("--poll-deadline", type=float, default=5.0)
    parser.add_argument("--redis-cpu", type=int, default=1)
    parser.add_argument("--load-cpu", type=int, default=0)
    args = parser.parse_args()
    if args.command == "hold":
        asyncio.run(hold(args))
        return
    args.count_list = [int(c) for c in args.counts.split(",")]
    args.max_count = max(args.count_list)
    asyncio.run(drive(args))


if __name__ == "__main__":
    main()
