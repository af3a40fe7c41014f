"""pytest_vmsnap/plugin"""
