"""Bad input through `vmsnap run`, whole cycles (Hypothesis): never a traceback, never a write
outside the VM, a framework code the extension has (or a one-line error) in the JSON result.

Each example mutates the bundled SQLite example's config (one field set to any JSON value, a
hostile script location, a huge or over-the-limit params list, a strange timeout, or the whole
file replaced by bytes) and runs ``vmsnap run`` in this process. The same cases run every time
(derandomized), with the sharpest ones pinned as explicit examples.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

from canaries import placed
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pytest_vmsnap import cli, data
from pytest_vmsnap.framework.azure import codes
from pytest_vmsnap.vm.helpers import PACKAGE_ROOT

SAMPLES = data.sample_scripts("sqlite")
BASE = json.loads((data.example("sqlite") / data.CONFIG_NAME).read_text())
FIELDS = sorted(BASE)
HOSTILE_LOCATIONS = [
    "relative/pre.sh",
    "../../usr/share/vmsnap-fuzz/pre.sh",
    "/etc/azure/../../usr/share/vmsnap-fuzz/pre.sh",
    "/etc/azure/ü ñ/pre script.sh",
    "/proc/self/pre.sh",
    "/sys/kernel/pre.sh",
    "/dev/pre.sh",
    "/dev/null",
    "/etc",
    "/",
    "",
    "/etc/azure/a\u0000b.sh",
    "/etc/azure/" + "d" * 300 + "/pre.sh",
    f"{PACKAGE_ROOT}/vmsnap-fuzz/pre.sh",
    "/var/tmp/vmsnap/vmsnap-fuzz/pre.sh",
]
ARG_MAX_PARAMS = ["x" * (3 << 20)]  # one argument past the kernel's limit (MAX_ARG_STRLEN)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**12), 10**12)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=8,
)
mutations = st.one_of(
    st.tuples(st.just("field"), st.sampled_from(FIELDS), json_values),
    st.tuples(
        st.just("field"),
        st.sampled_from(["preScriptLocation", "postScriptLocation"]),
        st.sampled_from(HOSTILE_LOCATIONS),
    ),
    st.tuples(
        st.just("field"),
        st.sampled_from(["timeoutInSeconds", "ScriptsExecutionPollTimeSeconds"]),
        st.sampled_from([-5, 0, 10**12, math.nan, math.inf, -math.inf, "10", 2.5]),
    ),
    st.tuples(st.just("raw"), st.just(""), st.binary(max_size=64)),
)


def _config_bytes(kind: str, key: str, value: Any) -> bytes:
    if kind == "raw":
        return bytes(value)
    data = dict(BASE)
    data[key] = value
    return json.dumps(data).encode()  # NaN and Infinity as Python writes them


@settings(
    max_examples=10,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(mutation=mutations)
@example(mutation=("field", "timeoutInSeconds", math.nan))
@example(mutation=("field", "timeoutInSeconds", -5))
@example(mutation=("field", "preScriptParams", [str(i) for i in range(10_000)]))
@example(mutation=("field", "preScriptParams", ARG_MAX_PARAMS))
@example(mutation=("field", "preScriptLocation", "../../usr/share/vmsnap-fuzz/pre.sh"))
@example(mutation=("field", "preScriptLocation", "/proc/self/pre.sh"))
@example(mutation=("field", "postScriptLocation", f"{PACKAGE_ROOT}/vmsnap-fuzz/pre.sh"))
@example(mutation=("raw", "", b"\xff\xfe{not json"))
@example(mutation=("raw", "", b"[" * 100_000))
def test_bad_input_never_escapes(
    tmp_path_factory: Any, root_required: None, mutation: tuple[str, str, Any]
) -> None:
    work = tmp_path_factory.mktemp("fuzz")
    config = work / "VMSnapshotScriptPluginConfig.json"
    config.write_bytes(_config_bytes(*mutation))
    config.chmod(0o600)
    for name in ("pre.sh", "post.sh"):
        shutil.copy(SAMPLES / name, work / name)
        (work / name).chmod(0o700)
    out = work / "result.json"
    argv = ["run", "--config", str(config), "--pre", str(work / "pre.sh")]
    argv += ["--post", str(work / "post.sh"), "--app", "sqlite", "--pacing", "prompt"]
    argv += ["--workload-seconds", "0.2", "--json", str(out)]
    with placed() as canaries:
        rc = cli.main(argv)  # an exception here is the traceback a user would see
        assert canaries.changes() == []
    for host_path in ("/usr/share/vmsnap-fuzz", f"{PACKAGE_ROOT}/vmsnap-fuzz", "relative"):
        assert not Path(host_path).exists(), host_path
    if rc == cli.EXIT_USAGE:
        return  # refused before any cycle, with a one-line message
    d = json.loads(out.read_text())
    if d["status"] is None:
        assert d["error"] and "\n" not in d["error"] and "Traceback" not in d["error"], d
    else:
        assert d["status"] in codes.CODES, d["status"]
