"""Shared fixtures (a control plane per session, a namespace per test) come from the testbed."""

pytest_plugins = ["virtstack_testbed.pytest_plugin"]
