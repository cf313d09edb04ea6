#!/usr/bin/env python3
"""Reads the deployment recipes the way their runners would, for bin/check-deploy.

    recipes.py runtime-root DOCKERFILE CONTEXT BINARY OUT
        Interprets the Dockerfile's last stage (the runtime image) into the directory OUT: the
        binary the build stage would produce, the files its COPY lines take from the build
        context, the shared libraries `ldd` lists, and /etc/passwd as distroless has it. Writes
        OUT.argv (ENTRYPOINT + CMD, one per line), OUT.env (ENV, KEY=VALUE lines), OUT.user.
        Any instruction it does not know fails, so the emulation cannot silently drift from
        the Dockerfile.

    recipes.py consistency BINARY STANDIN_PROFILE
        For each recipe (systemd unit + env example, Kamal accessory, Procfiles, Dockerfile
        ENV), checks that every environment variable is one ferrocable reads, then runs
        `ferrocable <the recipe's flags> config check` with the recipe's environment, the
        recipe's profile path replaced by STANDIN_PROFILE, and cross-checks stop timeouts,
        ports and paths against `ferrocable config print`.

Standard library only, except PyYAML for the Kamal file (Debian: python3-yaml).
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The variables ferrocable reads besides FERROCABLE_<SECTION>__<KEY> (README, Configuration).
CONVENTIONAL = {"PORT", "REDIS_URL", "SECRET_KEY_BASE", "RUST_LOG"}
# Stand-ins for secrets when a recipe names a variable without a value.
PLACEHOLDERS = {
    "SECRET_KEY_BASE": "check-deploy-placeholder-secret",
    "REDIS_URL": "redis://127.0.0.1:6379/1",
    "PORT": "8080",
}
PROFILE_IN_RECIPES = {"/etc/ferrocable/ferrocable.toml", "config/ferrocable.toml"}

failures = []


def fail(msg):
    failures.append(msg)
    print(f"   FAIL: {msg}")


def ok(msg):
    print(f"   ok: {msg}")


# ---------------------------------------------------------------- Dockerfile


def dockerfile_instructions(path):
    """(instruction, argument) pairs, continuation lines joined, comments dropped."""
    out, cur = [], ""
    for line in Path(path).read_text().splitlines():
        stripped = line.strip()
        if not cur and (not stripped or stripped.startswith("#")):
            continue
        if cur and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            cur += stripped[:-1] + " "
            continue
        cur += stripped
        word, _, rest = cur.partition(" ")
        out.append((word.upper(), rest.strip()))
        cur = ""
    return out


def runtime_stage(path):
    """The instructions of the last stage, and the global ARG defaults."""
    stages, globals_, current = [], {}, None
    for ins, arg in dockerfile_instructions(path):
        if ins == "FROM":
            current = []
            stages.append((arg, current))
        elif current is None:
            if ins == "ARG":
                k, _, v = arg.partition("=")
                globals_[k] = v
        else:
            current.append((ins, arg))
    return stages[-1], globals_


def parse_env(arg):
    return dict(item.split("=", 1) for item in shlex.split(arg))


def image_config(dockerfile):
    """ENV, USER, ENTRYPOINT, CMD, EXPOSE, STOPSIGNAL and COPY lines of the runtime stage."""
    (base, ins), _ = runtime_stage(dockerfile)
    conf = {"base": base, "env": {}, "args": {}, "copies": [], "user": None,
            "entrypoint": [], "cmd": [], "expose": [], "stopsignal": None}
    for name, arg in ins:
        if name == "ARG":
            k, _, v = arg.partition("=")
            conf["args"][k] = v
        elif name == "ENV":
            conf["env"].update(parse_env(arg))
        elif name == "COPY":
            words = arg.split()
            flags = [w for w in words if w.startswith("--")]
            paths = [w for w in words if not w.startswith("--")]
            src = [re.sub(r"\$\{(\w+)\}", lambda m: conf["args"][m.group(1)], p) for p in paths[:-1]]
            conf["copies"].append((flags, src, paths[-1]))
        elif name == "USER":
            conf["user"] = arg
        elif name in ("ENTRYPOINT", "CMD"):
            conf[name.lower()] = json.loads(arg)
        elif name == "EXPOSE":
            conf["expose"] += arg.split()
        elif name == "STOPSIGNAL":
            conf["stopsignal"] = arg
        else:
            raise SystemExit(f"recipes.py: the runtime stage has {name}, which the emulation "
                             "does not know: teach deploy/check/recipes.py what it does")
    return conf


def runtime_root(dockerfile, context, binary, out):
    conf = image_config(dockerfile)
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for flags, srcs, dest in conf["copies"]:
        if flags:
            if flags != ["--from=build"] or srcs != ["/out/ferrocable"]:
                raise SystemExit(f"recipes.py: unknown COPY {flags} {srcs}: teach the emulation")
            # The build stage's `install ... target/release/ferrocable /out/ferrocable`.
            items = [Path(binary)]
        else:
            items = [Path(context) / s for s in srcs]
        target = out / dest.lstrip("/")
        for item in items:
            if not item.exists():
                raise SystemExit(f"recipes.py: COPY source {item} is not in the build context")
            if item.is_dir():
                # COPY dir/ dest/ copies the directory's contents.
                shutil.copytree(item, target, dirs_exist_ok=True)
            else:
                dst = target / item.name if dest.endswith("/") else target
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(item, dst)
    # The shared libraries the runtime image must provide (distroless/cc: glibc, libgcc_s).
    libs = []
    for line in subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout.splitlines():
        m = re.search(r"(/\S+) \(0x", line)
        if m:
            libs.append(m.group(1))
    for lib in libs:
        dst = out / lib.lstrip("/")
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.realpath(lib), dst)
    # What distroless ships in /etc for user lookups, and a sticky /tmp.
    (out / "etc").mkdir(exist_ok=True)
    (out / "etc/passwd").write_text(
        "root:x:0:0:root:/root:/sbin/nologin\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
        "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")
    (out / "etc/group").write_text("root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n")
    (out / "tmp").mkdir(exist_ok=True)
    os.chmod(out / "tmp", 0o1777)
    os.chmod(out, 0o755)
    Path(f"{out}.argv").write_text("\n".join(conf["entrypoint"] + conf["cmd"]) + "\n")
    Path(f"{out}.env").write_text("".join(f"{k}={v}\n" for k, v in conf["env"].items()))
    Path(f"{out}.user").write_text((conf["user"] or "0:0") + "\n")
    Path(f"{out}.libs").write_text("\n".join(libs) + "\n")
    print(f"   runtime root {out}: base {conf['base']}, user {conf['user']}, "
          f"expose {' '.join(conf['expose'])}, stopsignal {conf['stopsignal']}")
    print(f"   libraries from ldd: {' '.join(libs)}")


# ---------------------------------------------------------------- consistency


def check_env_names(recipe, names):
    bad = [n for n in names if n not in CONVENTIONAL and not n.startswith("FERROCABLE_")]
    if bad:
        fail(f"{recipe}: ferrocable does not read {', '.join(bad)}")
    else:
        ok(f"{recipe}: every variable is one ferrocable reads ({', '.join(sorted(names))})")


def run_config(binary, args, env, recipe, standin):
    args = [standin if a in PROFILE_IN_RECIPES else a for a in args]
    env = {k: v for k, v in env.items()}
    env.setdefault("PATH", "/usr/bin:/bin")
    check = subprocess.run([binary, *args, "config", "check"], env=env, capture_output=True, text=True)
    if check.returncode != 0:
        fail(f"{recipe}: `ferrocable {' '.join(args)} config check` exited {check.returncode}: "
             f"{(check.stderr or check.stdout).strip()}")
        return None
    printed = subprocess.run([binary, *args, "config", "print"], env=env, capture_output=True,
                             text=True, check=True)
    eff = tomllib.loads(printed.stdout)
    ok(f"{recipe}: `ferrocable {' '.join(args)} config check` accepts its flags and environment "
       f"(listens {eff['server']['host']}:{eff['server']['port']}{eff['server']['mount_path']})")
    return eff


def systemd_duration(value):
    m = re.fullmatch(r"(\d+)(s|min)?", value.strip())
    if not m:
        raise SystemExit(f"recipes.py: cannot read the duration {value!r}")
    return int(m.group(1)) * (60 if m.group(2) == "min" else 1)


def env_file(path):
    env = {}
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            k, _, v = line.partition("=")
            env[k] = v
    return env


def check_systemd(binary, standin):
    unit = ROOT / "deploy/systemd/ferrocable.service"
    service = {}
    for line in unit.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            k, _, v = line.partition("=")
            service.setdefault(k, v)
    exec_start = shlex.split(service["ExecStart"])
    if exec_start[0] != "/usr/local/bin/ferrocable":
        fail(f"systemd: ExecStart runs {exec_start[0]}, expected /usr/local/bin/ferrocable")
    env = env_file(ROOT / "deploy/systemd/ferrocable.env.example")
    check_env_names("systemd ferrocable.env.example", env)
    eff = run_config(binary, exec_start[1:], env, "systemd", standin)
    if eff:
        # SIGTERM waits drain_delay_secs, then up to shutdown_timeout_secs for the drain.
        drain = eff["server"]["shutdown_timeout_secs"] + eff["server"].get("drain_delay_secs", 0)
        stop = systemd_duration(service["TimeoutStopSec"])
        if stop <= drain:
            fail(f"systemd: TimeoutStopSec={stop} does not exceed drain_delay_secs + shutdown_timeout_secs={drain}")
        else:
            ok(f"systemd: TimeoutStopSec={stop}s > drain_delay_secs + shutdown_timeout_secs={drain}s")
        if int(service["LimitNOFILE"]) <= eff["limits"]["max_connections"]:
            fail("systemd: LimitNOFILE is not above limits.max_connections")
        else:
            ok(f"systemd: LimitNOFILE={service['LimitNOFILE']} > max_connections={eff['limits']['max_connections']}")


def check_procfiles(binary, standin):
    for name in ("Procfile", "Procfile.heroku"):
        path = ROOT / "deploy/procfile" / name
        for line in path.read_text().splitlines():
            m = re.fullmatch(r"([A-Za-z0-9_-]+):\s*(.+)", line)
            if not m:
                fail(f"{name}: not a Procfile line: {line!r}")
                continue
            words = shlex.split(m.group(2))
            if words[0] != "ferrocable":
                fail(f"{name}: runs {words[0]}, expected ferrocable")
            used = set(re.findall(r"\$\{?(\w+)", m.group(2)))
            check_env_names(f"{name} ({m.group(1)})", used)
            env = {"PORT": "5100", "SECRET_KEY_BASE": PLACEHOLDERS["SECRET_KEY_BASE"],
                   "REDIS_URL": PLACEHOLDERS["REDIS_URL"]}
            args = [re.sub(r"\$\{?PORT\}?", env["PORT"], w) for w in words[1:]]
            run_config(binary, args, env, f"{name} ({m.group(1)})", standin)


def check_kamal(binary, standin, image):
    import yaml  # Debian: python3-yaml

    deploy = yaml.safe_load((ROOT / "deploy/kamal/deploy.yml").read_text())
    acc = deploy["accessories"]["cable"]
    env = {}
    env.update(image["env"])
    clear = acc.get("env", {}).get("clear", {})
    secret = acc.get("env", {}).get("secret", [])
    check_env_names("kamal accessory env", list(clear) + list(secret))
    env.update({k: str(v) for k, v in clear.items()})
    for k in secret:
        env[k] = PLACEHOLDERS.get(k, "placeholder")
    args = shlex.split(acc["cmd"]) if "cmd" in acc else image["cmd"]
    mounted = [f.split(":")[1] for f in acc.get("files", [])]
    for a in args:
        if a.startswith("/") and a.endswith(".toml") and a not in mounted:
            fail(f"kamal: {a} is neither mounted by files: nor in the image")
    eff = run_config(binary, args, env, "kamal accessory (image ENV + env + CMD)", standin)
    if not eff:
        return
    proxy = acc["proxy"]
    checks = [
        (proxy["app_port"] == eff["server"]["port"], f"proxy.app_port {proxy['app_port']} == port {eff['server']['port']}"),
        (str(eff["server"]["port"]) in image["expose"], f"image EXPOSE {image['expose']} has the port"),
        (eff["server"]["host"] == "0.0.0.0", "listens on every interface inside the container"),
        (proxy["path_prefix"] == eff["server"]["mount_path"], f"proxy.path_prefix {proxy['path_prefix']} == mount_path"),
        (proxy.get("strip_path_prefix") is False, "strip_path_prefix: false (the mount path is kept)"),
        (proxy["healthcheck"]["path"] == "/health", "healthcheck on /health"),
        (proxy["host"] == deploy["proxy"]["host"], "same host as the app"),
        (int(acc["options"]["stop-timeout"]) > eff["server"]["shutdown_timeout_secs"] + eff["server"].get("drain_delay_secs", 0),
         f"docker stop-timeout {acc['options']['stop-timeout']} > drain_delay_secs + shutdown_timeout_secs "
         f"{eff['server']['shutdown_timeout_secs'] + eff['server'].get('drain_delay_secs', 0)}"),
        (int(acc["options"]["ulimit"].split("=")[1].split(":")[0]) > eff["limits"]["max_connections"],
         f"ulimit {acc['options']['ulimit']} above max_connections"),
    ]
    for good, what in checks:
        (ok if good else fail)(f"kamal: {what}")


def consistency(binary, standin):
    image = image_config(ROOT / "Dockerfile")
    check_env_names("Dockerfile ENV", image["env"])
    if image["stopsignal"] != "SIGTERM":
        fail("Dockerfile: STOPSIGNAL is not SIGTERM")
    check_systemd(binary, standin)
    check_procfiles(binary, standin)
    check_kamal(binary, standin, image)
    if failures:
        print(f"recipes.py: {len(failures)} problem(s)")
        sys.exit(1)


def main():
    cmd, *rest = sys.argv[1:]
    if cmd == "runtime-root":
        runtime_root(*rest)
    elif cmd == "consistency":
        consistency(*rest)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
