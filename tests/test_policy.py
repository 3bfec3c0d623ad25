"""The event loop policy API (deprecated in 3.14, gone in 3.16) and the absence of
deprecation noise everywhere else."""

import asyncio
import os
import sys
import textwrap
import warnings

import pytest

import ferroloop
from ferroloop import _compat

from conftest import run_python

DEPRECATED = sys.version_info >= (3, 14)


def policy_warning(name):
    """What using `ferroloop.<name>` warns, on this CPython."""
    if not DEPRECATED:
        return warnings.catch_warnings()  # and nothing is expected: see `no_warnings`
    return pytest.warns(DeprecationWarning,
                        match=rf"^'ferroloop\.{name}' is deprecated and slated for removal "
                              r"in Python 3\.16$")


@pytest.fixture
def saved_policy():
    old = _compat.get_policy_quietly()
    yield
    _compat.set_policy_quietly(old)


def test_install_sets_a_policy_that_makes_ferroloop_loops(saved_policy):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        install = ferroloop.install
        install()
        policy_class = ferroloop.EventLoopPolicy
    messages = [str(w.message) for w in caught if w.category is DeprecationWarning]
    if DEPRECATED:
        # One warning per use, each naming ferroloop's API (not asyncio's, used inside).
        assert messages == [
            "'ferroloop.install' is deprecated and slated for removal in Python 3.16",
            "'ferroloop.EventLoopPolicy' is deprecated and slated for removal in Python 3.16",
        ]
        assert all(w.filename == __file__ for w in caught), [w.filename for w in caught]
    else:
        assert messages == []
    assert isinstance(_compat.get_policy_quietly(), policy_class)
    loop = asyncio.new_event_loop()
    try:
        assert isinstance(loop, ferroloop.Loop)
    finally:
        loop.close()

    async def main():
        return type(asyncio.get_running_loop())

    assert asyncio.run(main()) is ferroloop.Loop


def test_the_policy_is_asyncios_default_policy(saved_policy):
    with policy_warning("EventLoopPolicy"):
        policy_class = ferroloop.EventLoopPolicy
    assert policy_class is ferroloop._policy.policy_class()  # made once
    assert issubclass(policy_class, _compat.default_policy_class())
    assert policy_class.__module__ == "ferroloop"
    policy = policy_class()
    loop = policy.new_event_loop()
    try:
        assert type(loop) is ferroloop.Loop
    finally:
        loop.close()


NO_NOISE = textwrap.dedent("""
    import asyncio, sys
    import ferroloop

    async def main():
        await asyncio.sleep(0)
        return type(asyncio.get_running_loop()).__name__

    assert ferroloop.new_event_loop().close() is None
    assert ferroloop.run(main()) == "Loop"
    if sys.version_info >= (3, 12):  # asyncio.run's loop_factory
        assert asyncio.run(main(), loop_factory=ferroloop.new_event_loop) == "Loop"
    with asyncio.Runner(loop_factory=ferroloop.new_event_loop) as runner:
        assert runner.run(main()) == "Loop"
    print("quiet")
""")


def test_no_deprecation_warning_under_w_error():
    proc = run_python("-W", "error", "-c", NO_NOISE)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "quiet\n"
    assert proc.stderr == ""


def test_python_m_ferroloop_runs_a_script_without_deprecation_warnings(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent("""
        import asyncio

        async def main():
            return type(asyncio.get_running_loop()).__name__

        print(asyncio.run(main()))
    """))
    proc = run_python("-W", "error", "-m", "ferroloop", str(script))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "Loop\n"
    assert proc.stderr == ""


WITHOUT_POLICIES = textwrap.dedent("""
    # A CPython without policies (3.16): asyncio's policy API is gone before ferroloop is
    # imported.
    import asyncio, asyncio.events
    for name in ("get_event_loop_policy", "set_event_loop_policy", "DefaultEventLoopPolicy",
                 "_get_event_loop_policy", "_set_event_loop_policy", "__getattr__"):
        for module in (asyncio, asyncio.events):
            vars(module).pop(name, None)

    import ferroloop

    async def main():
        return type(asyncio.get_running_loop()).__name__

    assert ferroloop.run(main()) == "Loop"
    for name in ("install", "EventLoopPolicy"):
        try:
            getattr(ferroloop, name)
        except AttributeError as exc:
            assert str(exc) == f"module 'ferroloop' has no attribute {name!r}", exc
        else:
            raise AssertionError(f"ferroloop.{name} exists without asyncio's policies")
    print("ok")
""")


def test_import_works_on_a_cpython_without_policies():
    proc = run_python("-W", "error", "-c", WITHOUT_POLICIES)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "ok\n"


def test_other_missing_attributes_are_attribute_errors():
    with pytest.raises(AttributeError, match="^module 'ferroloop' has no attribute 'nope'$"):
        ferroloop.nope
    assert "EventLoopPolicy" not in ferroloop.__all__  # `import *` stays quiet on 3.14+
    assert os.path.basename(ferroloop.__file__) == "__init__.py"
