"""pytest_vmsnap/vm/guest"""
