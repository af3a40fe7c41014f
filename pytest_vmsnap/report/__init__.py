"""pytest_vmsnap/report"""
