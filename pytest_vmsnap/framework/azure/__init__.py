"""Azure's VMSnapshot script framework (the Linux VMBackup extension), read from its source."""
