"""The disposable stand-in VM: disks, freeze, snapshots, and the VM's process space."""
