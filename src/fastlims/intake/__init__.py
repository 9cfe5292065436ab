"""Model intake (seed paths 5–8): blob storage, the SFTP server for Digital Twin partners, upload
events (SFTP close, pool watcher, Event Grid webhook, HTTP PUT), validation of FMUs and
inter_connection.json, and the Data Processor that moves a valid set into the request's
simulation folder or quarantines it with the reasons."""
