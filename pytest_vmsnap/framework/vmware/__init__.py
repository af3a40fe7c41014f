"""VMware Tools' (open-vm-tools) vmbackup plugin: quiesced snapshots on Linux."""
