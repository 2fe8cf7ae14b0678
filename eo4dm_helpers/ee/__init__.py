"""Earth Engine engine: pure graph builders (``graphs``), the output plan (``plan``), and the only
modules that talk to Google (``session`` for authentication, ``io`` for requests)."""
