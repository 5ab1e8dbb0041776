def test_recorded_preprocessing_gives_the_test_batches_the_data_source_gave(tmp_path):
    """`Preprocess` on the raw test arrays equals the data source's own test batches: images
    stored NHWC uint8 and resized to data.image_size, and standardised feature vectors."""
    import torch
    from prunebench.export.preprocess import Preprocess

    from prunebench.config.schema import DataConfig
    from prunebench.data.arrays import build_arrays

    rng = np.random.default_rng(1)
    pictures = rng.integers(0, 256, size=(30, 10, 10, 3), dtype=np.uint8)
    features = rng.normal(size=(30, 3)) * 7 + 2
    labels = np.arange(30) % 2
    for name, x, size in (("img", pictures, 6), ("vec", features, None)):
        root = tmp_path / f"{name}.npz"
        np.savez(root, x_train=x[:20], y_train=labels[:20], x_test=x[20:], y_test=labels[20:])
        cfg = DataConfig(name="arrays", root=root, batch_size=4, eval_batch_size=100,
                         image_size=size)  # fmt: skip
        bundle = build_arrays(cfg, torch.device("cpu"))
        ((given, _),) = list(bundle.test)
        replayed = Preprocess(bundle.info.preprocessing)(x[20:])
        assert replayed.shape == given.shape
        torch.testing.assert_close(replayed, given, rtol=0, atol=1e-6)
