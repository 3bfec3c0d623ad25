"""ferroloop's dependencies on asyncio's private side, checked on the running CPython.

Each private name and signature ferroloop relies on (`ferroloop._compat.DEPENDENCIES`)
must exist here with the parameters ferroloop's adapter was written for; each native copy
of a CPython constant must equal it; and each CPython function ferroloop re-implements
(`_compat.MIRRORS`) must be the one that was compared with ferroloop's copy, as
fingerprinted in `cpython_mirrors.txt`. A new CPython that changes any of them fails the
test named after it, with what to do.

After comparing ferroloop's copy with a changed CPython function (and adapting it), record
the new fingerprints of the running CPython with:

    python tests/test_compat.py --record
"""

import ast
import importlib
import inspect
import os
import sys
import textwrap

import pytest

import ferroloop
from ferroloop import _compat, _ferroloop

HERE = os.path.dirname(os.path.abspath(__file__))
FINGERPRINTS = os.path.join(HERE, "cpython_mirrors.txt")
VERSION = "%d.%d" % sys.version_info[:2]
CPYTHON = f"CPython {sys.version.split()[0]}"

_MISSING = object()


def resolve(path):
    """The object at a dotted path: the longest importable module, then attributes (a
    slot of a class counts as an attribute)."""
    parts = path.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for name in parts[split:]:
            owner, obj = obj, inspect.getattr_static(obj, name, _MISSING)
            if obj is _MISSING and name in getattr(owner, "__slots__", ()):
                obj = name
            if obj is _MISSING:
                return _MISSING
            if isinstance(obj, (staticmethod, classmethod)):
                obj = obj.__func__
        return obj
    return _MISSING


def parameters(func):
    """Parameter names, without `self`."""
    names = list(inspect.signature(func).parameters)
    return tuple(names[1:] if names[:1] == ["self"] else names)


def accepts(ours, theirs):
    """Whether a call CPython's code makes to `theirs` (any of its parameters, passed as it
    may pass them) binds to `ours`; the reason if not."""
    ours_sig = inspect.signature(ours)
    args, kwargs = ["self"], {}
    for param in list(inspect.signature(theirs).parameters.values())[1:]:
        if param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
            args.append(param.name)
        elif param.kind is param.VAR_POSITIONAL:
            args.extend(["extra1", "extra2"])
        elif param.kind is param.KEYWORD_ONLY:
            kwargs[param.name] = param.name
    try:
        ours_sig.bind(*args, **kwargs)
    except TypeError as exc:
        return f"{ours_sig} cannot take {inspect.signature(theirs)}: {exc}"
    return None


def where_ferroloop_has_it(name):
    for cls in ferroloop.Loop.__mro__:
        if name in vars(cls):
            return cls
    return None


@pytest.mark.parametrize("dep", _compat.DEPENDENCIES, ids=lambda d: d.where)
def test_private_dependency(dep):
    advice = (f"ferroloop relies on {dep.where} ({dep.use}: {dep.why}); adapt "
              f"python/ferroloop/_compat.py for {CPYTHON}")
    if dep.instance:
        import asyncio
        owner, name = dep.where.rsplit(".", 1)
        cls = resolve(owner)
        loop = asyncio.SelectorEventLoop()
        try:
            obj = cls([], loop=loop) if issubclass(cls, asyncio.Future) else loop
            assert isinstance(obj, cls) and hasattr(obj, name), (
                f"{dep.where}: asyncio's {cls.__name__} has no {name} in {CPYTHON}. {advice}")
        finally:
            loop.close()
        return
    obj = resolve(dep.where)
    assert obj is not _MISSING, f"{dep.where} is gone from {CPYTHON}. {advice}"
    if dep.params is not None:
        assert callable(obj), f"{dep.where} is no longer callable in {CPYTHON}. {advice}"
        found = parameters(obj)
        assert found == dep.params, (
            f"{dep.where}{found} in {CPYTHON}; ferroloop was written for "
            f"{dep.where}{dep.params}. {advice}")
    if dep.use == "overrides":
        name = dep.where.rsplit(".", 1)[1]
        ours = getattr(ferroloop.Loop, name)
        problem = accepts(ours, obj)
        assert problem is None, f"ferroloop.Loop.{name}: {problem}. {advice}"


def test_every_private_override_is_listed():
    """A private method or attribute of asyncio's loop that ferroloop.Loop defines anew is
    a dependency: it must be listed, so the check above covers it."""
    listed = {d.where.rsplit(".", 1)[1] for d in _compat.DEPENDENCIES if d.use == "overrides"}
    listed |= set(_compat.PROVIDED_LOOP_ATTRIBUTES)
    base = ferroloop.Loop.__mro__.index(next(
        cls for cls in ferroloop.Loop.__mro__ if cls.__module__.startswith("asyncio.")))
    ours = set()
    for cls in ferroloop.Loop.__mro__[:base]:
        ours |= {name for name in vars(cls)
                 if name.startswith("_") and not name.startswith("__")}
    asyncio_has = {name for name in ours if hasattr(ferroloop.Loop.__mro__[base], name)}
    missing = sorted(asyncio_has - listed)
    assert not missing, (f"ferroloop.Loop replaces asyncio's {missing} without listing them "
                         "in ferroloop._compat.DEPENDENCIES")


@pytest.mark.parametrize("name", sorted(_compat.PROVIDED_LOOP_ATTRIBUTES))
def test_provided_loop_attributes_exist_in_asyncio(name):
    import asyncio
    stdlib = asyncio.SelectorEventLoop()
    try:
        assert hasattr(stdlib, name), (
            f"asyncio's loop on {CPYTHON} no longer has {name}, which ferroloop provides "
            "for CPython's code and debugging tools: drop it from "
            "_compat.PROVIDED_LOOP_ATTRIBUTES (and from the native core) if nothing reads it")
    finally:
        stdlib.close()


@pytest.mark.parametrize("name", _compat.PROVIDED_TRANSPORT_ATTRIBUTES)
def test_provided_transport_attributes_exist_in_asyncio(name):
    """What ferroloop's transport provides for CPython's code is what asyncio's has."""
    import asyncio
    import socket
    for loop in (asyncio.SelectorEventLoop(), ferroloop.new_event_loop()):
        a, b = socket.socketpair()
        try:
            transport = loop._make_socket_transport(a, asyncio.Protocol())
            assert hasattr(transport, name), (
                f"{type(transport).__name__} on {CPYTHON} has no {name}: asyncio's transport "
                "no longer has it (drop it from _compat.PROVIDED_TRANSPORT_ATTRIBUTES and "
                "from ferroloop._transports if nothing reads it), or ferroloop's lost it")
            transport.abort()
            loop.run_until_complete(asyncio.sleep(0))
        finally:
            b.close()
            loop.close()


@pytest.mark.parametrize("path,value", sorted(_ferroloop._asyncio_constants.items()))
def test_native_copies_of_constants(path, value):
    theirs = resolve(path)
    assert theirs == value, (f"{path} is {theirs!r} in {CPYTHON}; ferroloop's native copy "
                             f"(src/constants.rs) is {value!r}")


def test_the_readme_lists_every_dependency():
    with open(os.path.join(os.path.dirname(HERE), "README.md")) as f:
        readme = f.read()
    missing = [d.where for d in _compat.DEPENDENCIES
               if f"`{d.where.removeprefix('asyncio.')}`" not in readme]
    assert not missing, f"README.md does not list {missing}"


def fingerprint(func):
    """A digest of a function's code, blind to comments, layout and its docstring."""
    import hashlib
    tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    node = tree.body[0]
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        node.body = body[1:] or [ast.Pass()]
    return hashlib.sha256(ast.dump(node).encode()).hexdigest()[:16]


def current_fingerprints():
    prints = {}
    for path in _compat.MIRRORS:
        obj = resolve(path)
        prints[path] = "absent" if obj is _MISSING else fingerprint(obj)
    return prints


def recorded_fingerprints():
    recorded = {}
    with open(FINGERPRINTS) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                version, path, digest = line.split()
                recorded[version, path] = digest
    return recorded


@pytest.mark.parametrize("path", sorted(_compat.MIRRORS))
def test_mirrored_function_is_the_one_compared(path):
    recorded = recorded_fingerprints().get((VERSION, path))
    current = current_fingerprints()[path]
    assert recorded is not None, (
        f"{path}: no fingerprint for CPython {VERSION}. ferroloop re-implements it in "
        f"{_compat.MIRRORS[path]}: compare that with {CPYTHON}'s, then record it "
        "(python tests/test_compat.py --record)")
    assert current == recorded, (
        f"{path} changed in {CPYTHON} (fingerprint {current}, compared: {recorded}). "
        f"ferroloop re-implements it in {_compat.MIRRORS[path]}: compare and adapt, then "
        "record it (python tests/test_compat.py --record)")


@pytest.mark.parametrize("path", sorted(_compat.MIRRORS))
def test_mirror_location_exists(path):
    # Where the copy lives must name files that exist, so the next comparison finds it.
    root = os.path.dirname(HERE)
    for location in _compat.MIRRORS[path].split(","):
        file = location.split("(")[0].strip()
        assert os.path.isfile(os.path.join(root, file)), (path, file)


def test_the_native_layer_names_no_private_asyncio_module():
    """The native layer takes private names from ferroloop._compat only."""
    src = os.path.join(os.path.dirname(HERE), "src")
    offenders = []
    private_modules = ("asyncio.base_events", "asyncio.events", "asyncio.format_helpers",
                       "asyncio.futures", "asyncio.selector_events", "asyncio.transports",
                       "asyncio.trsock", "asyncio.constants", "asyncio.log")
    for root, _, files in os.walk(src):
        for name in files:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(root, name)
            with open(path) as f:
                for number, line in enumerate(f, 1):
                    code = line.split("//", 1)[0]
                    if any(f'"{module}"' in code for module in private_modules):
                        offenders.append(f"{path}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_the_thread_states_context_field_is_found():
    """The native layer reads the current context from CPython's thread state, whose layout
    is not part of the stable ABI (`src/py/context.rs`): it finds the field on import and,
    where it cannot, copies the context on every call_soon instead. Only the speed would
    suffer, so this test is what says a new CPython moved it."""
    offset = _ferroloop._thread_context_offset()
    assert offset is not None, (
        f"ferroloop found no `context` field in the first 288 bytes of CPython {VERSION}'s "
        "PyThreadState; see find_thread_context in src/py/context.rs")
    assert offset % 8 == 0 and 0 < offset < 288


def record():
    prints = current_fingerprints()
    kept = [(v, p, d) for (v, p), d in recorded_fingerprints().items() if v != VERSION]
    lines = sorted(kept + [(VERSION, p, d) for p, d in prints.items()])
    with open(FINGERPRINTS, "w") as f:
        f.write("# The CPython functions ferroloop re-implements (ferroloop._compat.MIRRORS),\n"
                "# as compared with ferroloop's copies: version, function, fingerprint\n"
                "# (tests/test_compat.py). Recorded after review, never to silence the test.\n")
        for line in lines:
            f.write(" ".join(line) + "\n")
    print(f"recorded {len(prints)} fingerprints for CPython {VERSION}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--record"]:
        record()
    else:
        raise SystemExit(__doc__)
