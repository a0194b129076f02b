"""Call recordings: copied from MTT into our storage (download.py is the only fetcher), played back safely."""
