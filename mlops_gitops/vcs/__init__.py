"""Facts from version control: Git (commits, authors, pull requests, uncommitted changes) and DVC (data hashes)."""
