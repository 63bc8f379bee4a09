"""The ``sqlkv`` command line."""
