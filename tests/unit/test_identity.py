"""The VM's host name line in its /etc/hosts (:mod:`pytest_vmsnap.vm.guest.identity`)."""

from __future__ import annotations

import pytest

from pytest_vmsnap.vm.guest.identity import hosts_with_name


@pytest.mark.parametrize(
    "hosts",
    [
        "127.0.0.1\tlocalhost\n127.0.1.1\tsource\n",
        "10.0.0.4 source.internal source # cloud-init\n",
    ],
)
def test_a_name_already_listed_is_left_alone(hosts: str) -> None:
    assert hosts_with_name(hosts, "source") == hosts


@pytest.mark.parametrize(
    ("hosts", "expected"),
    [
        ("127.0.0.1\tlocalhost\n", "127.0.0.1\tlocalhost\n127.0.1.1\tsource\n"),
        ("127.0.0.1 localhost", "127.0.0.1 localhost\n127.0.1.1\tsource\n"),
        ("", "127.0.1.1\tsource\n"),
        # Only names count: a comment or the address column does not list it.
        ("# source\n", "# source\n127.0.1.1\tsource\n"),
        ("127.0.0.1 localhost sourcery\n", "127.0.0.1 localhost sourcery\n127.0.1.1\tsource\n"),
    ],
)
def test_a_missing_name_gets_debians_loopback_line(hosts: str, expected: str) -> None:
    assert hosts_with_name(hosts, "source") == expected
