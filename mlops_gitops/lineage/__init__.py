"""Facts from Git and DVC: commits, authors, content hashes."""
