"""The data pipeline: training lists (``training_list``), featurized ``.npz`` datasets (``make_dataset``,
``dataset``) and a synthetic speech corpus (``synth``)."""
