"""The local engine: the Earth Engine phases of the chains on local scenes, window by window.

- ``scenes``: the scene store (GeoTIFF/COG + JSON sidecar per scene), ``SceneReader`` (nearest-neighbour
  reads onto the fixed output grid, by window), ``scene_from_files`` + ``register_scene`` to index files
  a user already has (e.g. ESPA one-file-per-band deliveries) without copying them.
- ``ops``: the pixel operations, one per Earth Engine operation (bit rules, normalized difference,
  shadow projection, disk focalMin/focalMax, focal mean/mode fills), all window-independent.
- ``preprocess``: scale/offset, QA rules, indices, outliers, calibration; the global chain's days.
- ``highres``: the local chain's scenes (S2, Landsat) window by window with the halos the focal
  operations need (S2 shadows 1 km + buffer, L7 gap fill 25 px), staged as tiled GeoTIFFs.
- ``land``: the WorldCover land mask, by window or staged. ``windows`` / ``rasters``: window geometry,
  threads, windowed GeoTIFF writing.

Everything is driven by the product specification (``eo4dm_helpers.products``). Memory depends on the
window (``windows.WINDOW``) and the threads (``windows.WORKERS``), not on the tile: an 18,500² px
tile-dekad runs under 1 GB (``bench/preprocess.py``).
"""
