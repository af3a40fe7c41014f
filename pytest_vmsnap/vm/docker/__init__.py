"""pytest_vmsnap/vm/docker"""
