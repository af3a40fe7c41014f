"""This machine's set-up for pytest-vmsnap: ``vmsnap setup`` installs the Debian packages of
``debian-packages.txt`` (:mod:`.packages`), ``vmsnap doctor`` checks what the harness needs
(:mod:`.doctor`): root, loop devices, a real freeze, a reflink pool, each application's
programs and client library, Docker for the container stand-in, each failure with its fix.

Importing this package imports nothing else: ``python3 -m pytest_vmsnap.setup
--print-packages`` works with the system's Python before any virtual environment exists.
"""
