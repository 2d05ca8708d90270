"""Services: every write to the database goes through a function here (``<entity>_<action>(*, ...)``)."""
