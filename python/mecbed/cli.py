"""Running the mecbed binary: where it is, how Python arguments become
command-line options, and errors that carry mecbed's own message."""

import json
import os
import shutil
import subprocess


class MecbedError(RuntimeError):
    """A mecbed command failed. ``args`` the command line, ``returncode``,
    ``stderr`` mecbed's message (also the exception's text)."""

    def __init__(self, cmd, returncode, stderr, stdout=""):
        self.cmd = list(cmd)
        self.returncode = returncode
        self.stderr = stderr
        self.stdout = stdout
        msg = stderr.strip() or stdout.strip()[-2000:] or "no message"
        super().__init__("%s exited %d: %s" % (" ".join(self.cmd[:2]), returncode, msg))


def binary():
    """The mecbed binary to run: $MECBED, else build/mecbed of the source tree
    this package is in (python/mecbed -> ../../build/mecbed), else mecbed on
    $PATH. Raises MecbedError when none exists."""
    env = os.environ.get("MECBED")
    if env:
        if not os.access(env, os.X_OK):
            raise MecbedError(["mecbed"], 127, "$MECBED=%s is not an executable" % env)
        return env
    here = os.path.dirname(os.path.abspath(__file__))
    tree = os.path.normpath(os.path.join(here, "..", "..", "build", "mecbed"))
    if os.access(tree, os.X_OK):
        return tree
    found = shutil.which("mecbed")
    if found:
        return found
    raise MecbedError(["mecbed"], 127, "mecbed not found: set $MECBED, build it (make), or install it")


def _flag(name):
    return "--" + name.replace("_", "-")


def options_to_args(**opts):
    """Keyword arguments as command-line options: ``device_type="rpi4"`` ->
    ``--device-type rpi4``; True -> the bare flag; False and None -> nothing;
    a list or tuple -> the option once per item (``policy_plugin=[a, b]``);
    a dict (``policy_opt={"frac": 0.3}``) -> ``key=value,...``."""
    args = []
    for name, v in opts.items():
        if v is None or v is False:
            continue
        if v is True:
            args.append(_flag(name))
        elif isinstance(v, (list, tuple)):
            for item in v:
                args += [_flag(name), _text(item)]
        else:
            args += [_flag(name), _text(v)]
    return args


def _text(v):
    if isinstance(v, dict):
        return ",".join("%s=%s" % (k, _text(x)) for k, x in v.items())
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, float):
        return repr(v)
    return str(v)


def call(args, check=True, timeout=None, cwd=None, env=None):
    """Run ``mecbed ARGS``; returns the CompletedProcess (text). With check,
    a non-zero exit raises MecbedError with mecbed's stderr."""
    cmd = [binary()] + [str(a) for a in args]
    full_env = None
    if env:
        full_env = dict(os.environ)
        full_env.update(env)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=full_env)
    if check and p.returncode != 0:
        raise MecbedError(cmd[1:], p.returncode, p.stderr, p.stdout)
    return p


def call_json(args, check=True, **kw):
    """Run ``mecbed ARGS`` (which must include --json) and parse stdout."""
    p = call(args, check=check, **kw)
    try:
        return json.loads(p.stdout)
    except ValueError as e:
        raise MecbedError(list(args), p.returncode, "output is not JSON (%s): %s" % (e, p.stdout[:500]))
