"""Sources beyond Earth Engine (issue #10, DOMAIN.md §4.6): STAC catalogues for the local engine.

- ``search``: pystac-client searches, and the ``SearchPlan`` the dry run prints;
- ``assets``: each catalogue's asset names mapped onto the product specification's bands and QA;
- ``loader``: S2 L2A / Landsat C2 L2 items as scenes of the local engine (odc-stac, dask chunks read
  window by window) and SL_2_LST items as daily LST scenes;
- ``slstr``: the SL_2_LST swath: read, flag with the product's own flags, resample onto a grid, °C;
- ``credentials``: Copernicus Data Space credentials (parameters or environment, never logged);
- ``offline``: a static catalogue of generated COGs and swaths and a loopback STAC API (tests, demo).
"""
