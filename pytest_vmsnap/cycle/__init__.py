"""pytest_vmsnap/cycle"""
