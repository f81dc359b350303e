"""Video data: shards → batches.

- ``video``: raw YUV 4:2:0 and PNG I/O, the BT.709 conversion.
- ``pack``: clips (Vimeo-90k trees, frame folders, YUV files) → WebDataset tar shards + ``manifest``.
- ``shards``: random access to clips inside shards; ``loader``: ``train_batches`` for one stage, rank and epoch.
- ``synthetic`` / ``builtin``: the built-in dataset from bundled photographs (``ensure_builtin_dataset``).
- ``testsets``: test-set descriptions (``data/*.yaml``) and frame readers; ``bench``: loader throughput.
"""
