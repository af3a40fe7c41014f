"""pytest_vmsnap/evidence"""
