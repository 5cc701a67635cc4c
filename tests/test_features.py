"""Feature extractors and the verified weight downloader (a local HTTP server, no internet)."""
import hashlib
import http.server
import threading

import pytest
import torch
import torchvision
from torchvision.models.inception import InceptionA, InceptionE

from unpaired.errors import UnpairedError
from unpaired.evaluation.features import InceptionFID, TinyFeatures, builtin_extractors, compute_features, download_weights
from unpaired.evaluation.inception import _FIDInceptionA, _FIDInceptionE, fid_inception_v3
from unpaired.evaluation.metrics import kid

PAYLOAD = bytes(range(256)) * 40 + b"weights"
GOOD = hashlib.sha256(PAYLOAD).hexdigest()
WRONG = hashlib.sha256(b"something else").hexdigest()


# --------------------------------------------------------------------------- local server
@pytest.fixture
def server():
    """Serves PAYLOAD at /w.pth, 404 elsewhere; records the paths requested."""
    requests = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            if self.path == "/w.pth":
                self.send_response(200)
                self.send_header("Content-Length", str(len(PAYLOAD)))
                self.end_headers()
                self.wfile.write(PAYLOAD)
            else:
                self.send_error(404)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield base, requests
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def test_download_good_hash_is_cached_and_reused(server, tmp_path):
    base, requests = server
    path = download_weights(f"{base}/w.pth", GOOD, "w.pth", directory=tmp_path)
    assert path == tmp_path / "w.pth"
    assert path.read_bytes() == PAYLOAD
    assert requests == ["/w.pth"]
    again = download_weights(f"{base}/w.pth", GOOD, "w.pth", directory=tmp_path)
    assert again == path
    assert requests == ["/w.pth"]  # no second request
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.pth"]  # no temporary files left


def test_download_accepts_a_digest_prefix(server, tmp_path):
    base, _ = server
    path = download_weights(f"{base}/w.pth", GOOD[:8].upper(), "w.pth", directory=tmp_path)
    assert path.read_bytes() == PAYLOAD


def test_download_wrong_hash_raises_and_leaves_nothing(server, tmp_path):
    base, requests = server
    with pytest.raises(UnpairedError, match="SHA-256") as info:
        download_weights(f"{base}/w.pth", WRONG, "w.pth", directory=tmp_path)
    assert GOOD in str(info.value) and "deleted" in str(info.value)
    assert list(tmp_path.iterdir()) == []
    assert requests == ["/w.pth"]


def test_download_uses_cache_env_and_tries_mirrors(server, tmp_path, monkeypatch):
    base, requests = server
    monkeypatch.setenv("UNPAIRED_CACHE", str(tmp_path / "cache"))
    path = download_weights([f"{base}/missing.pth", f"{base}/w.pth"], GOOD, "w.pth")
    assert path == tmp_path / "cache" / "w.pth"
    assert requests == ["/missing.pth", "/w.pth"]


def test_download_replaces_a_corrupt_cached_copy(server, tmp_path):
    base, requests = server
    (tmp_path / "w.pth").write_bytes(b"truncated")
    path = download_weights(f"{base}/w.pth", GOOD, "w.pth", directory=tmp_path)
    assert path.read_bytes() == PAYLOAD
    assert requests == ["/w.pth"]


def test_download_failure_names_url_and_target(server, tmp_path):
    base, _ = server
    with pytest.raises(UnpairedError) as info:
        download_weights(f"{base}/missing.pth", GOOD, "w.pth", directory=tmp_path)
    message = str(info.value)
    assert "/missing.pth" in message and str(tmp_path / "w.pth") in message
    assert list(tmp_path.iterdir()) == []


def test_download_rejects_a_malformed_digest(tmp_path):
    with pytest.raises(ValueError, match="hex"):
        download_weights("http://127.0.0.1:9/x", "abc", "x", directory=tmp_path)


# --------------------------------------------------------------------------- FID Inception
@pytest.fixture(scope="module")
def inception():
    torch.manual_seed(0)
    model = InceptionFID(load_weights=False)
    for module in model.modules():  # He init, so that activations neither vanish nor explode
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    return model


def test_inception_maps_images_to_2048_features(inception):
    images = torch.rand(2, 3, 64, 64) * 2 - 1
    feats = inception(images)
    assert feats.shape == (2, 2048) and feats.dtype == torch.float32
    assert torch.isfinite(feats).all()
    assert not inception.training
    inception.train()
    assert not inception.training  # stays in eval mode: BatchNorm uses its running stats
    assert not any(p.requires_grad for p in inception.parameters())


def test_inception_has_torchvision_layout_with_1008_classes():
    # pytorch-fid's weights file was saved from torchvision's Inception3 layout with 1008
    # classes and no aux head: same keys and shapes, so it loads strictly.
    ours = fid_inception_v3().state_dict()
    stock = torchvision.models.inception_v3(
        weights=None, aux_logits=False, init_weights=False, num_classes=1008
    ).state_dict()
    assert ours.keys() == stock.keys()
    assert all(ours[k].shape == stock[k].shape for k in ours)
    assert ours["fc.weight"].shape == (1008, 2048)


def test_fid_blocks_pool_like_tensorflow():
    torch.manual_seed(0)
    x = torch.rand(1, 192, 9, 9)
    fid_a, stock_a = _FIDInceptionA(192, pool_features=32).eval(), InceptionA(192, pool_features=32).eval()
    stock_a.load_state_dict(fid_a.state_dict())
    ours, theirs = fid_a(x), stock_a(x)
    # the conv branches agree; the pool branch (last 32 channels) differs only on the border,
    # where TensorFlow's average pool ignores the zero padding
    assert torch.allclose(ours[:, :-32], theirs[:, :-32])
    assert torch.allclose(ours[:, -32:, 1:-1, 1:-1], theirs[:, -32:, 1:-1, 1:-1], atol=1e-6)
    assert not torch.allclose(ours[:, -32:, 0], theirs[:, -32:, 0])

    net = fid_inception_v3()
    assert isinstance(net.Mixed_7b, _FIDInceptionE) and net.Mixed_7b.pool == "avg"
    assert isinstance(net.Mixed_7c, _FIDInceptionE) and net.Mixed_7c.pool == "max"
    y = torch.rand(1, 2048, 5, 5)
    stock_e = InceptionE(2048).eval()
    stock_e.load_state_dict(net.Mixed_7c.state_dict())
    out_max, out_avg = net.Mixed_7c.eval()(y), stock_e(y)
    assert torch.allclose(out_max[:, :-192], out_avg[:, :-192])
    assert not torch.allclose(out_max[:, -192:, 2, 2], out_avg[:, -192:, 2, 2])  # max pool, even inside


def test_inception_loads_a_weights_file(inception, tmp_path):
    path = tmp_path / "fid.pth"
    torch.save(inception.net.state_dict(), path)
    loaded = InceptionFID(weights_path=path)
    images = torch.rand(1, 3, 32, 32) * 2 - 1
    expected = inception(images)
    assert expected.abs().max() > 1e-3
    assert torch.allclose(loaded(images), expected, rtol=1e-5, atol=1e-7)


def test_inception_input_is_8_bit_quantized_and_resized_to_299(inception):
    seen = []
    hook = inception.net.Conv2d_1a_3x3.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    try:
        images = torch.rand(1, 3, 32, 32) * 2 - 1
        inception(images)
        inception.quantize = False
        inception(images)
    finally:
        inception.quantize = True
        hook.remove()
    levels = torch.round((images + 1) * 127.5) / 127.5 - 1
    resize = torch.nn.functional.interpolate
    assert seen[0].shape == (1, 3, 299, 299)
    assert torch.allclose(seen[0], resize(levels, size=299, mode="bilinear", align_corners=False), atol=1e-6)
    assert torch.allclose(seen[1], resize(images, size=299, mode="bilinear", align_corners=False), atol=1e-6)
    assert not torch.allclose(seen[0], seen[1], atol=1e-4)


def test_inception_rejects_a_broken_weights_file(tmp_path):
    path = tmp_path / "broken.pth"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(UnpairedError, match="broken.pth"):
        InceptionFID(weights_path=path)


# --------------------------------------------------------------------------- tiny extractor
def test_tiny_shape_and_determinism():
    images = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    torch.manual_seed(1)
    first = TinyFeatures()(images)
    torch.manual_seed(2)  # the global RNG plays no part
    second = TinyFeatures()(images)
    assert first.shape == (4, TinyFeatures().dim) == (4, 262)
    assert torch.equal(first, second)
    assert not torch.allclose(TinyFeatures(seed=1)(images), first)
    # per-image: a feature does not depend on the rest of the batch
    assert torch.allclose(TinyFeatures()(images[1:2]), first[1:2], atol=1e-6)
    # any input size works (resized internally)
    assert TinyFeatures()(torch.zeros(2, 3, 48, 40)).shape == (2, 262)


def test_tiny_rejects_non_rgb():
    with pytest.raises(UnpairedError, match=r"\(N, 3, H, W\)"):
        TinyFeatures()(torch.zeros(2, 1, 32, 32))


def test_tiny_features_separate_distributions():
    gen = torch.Generator().manual_seed(0)

    def blobs(n, tint):
        base = torch.rand(n, 3, 8, 8, generator=gen)
        x = torch.nn.functional.interpolate(base, size=32, mode="bilinear") + tint.view(1, 3, 1, 1)
        return (x * 2 - 1).clamp(-1, 1)

    warm, cool = torch.tensor([0.3, 0.0, -0.3]), torch.tensor([-0.3, 0.0, 0.3])
    extractor = TinyFeatures()
    a1 = compute_features(extractor, blobs(60, warm))
    a2 = compute_features(extractor, blobs(60, warm))
    b = compute_features(extractor, blobs(60, cool))
    same, _ = kid(a1, a2, subsets=10, subset_size=50)
    cross, _ = kid(a1, b, subsets=10, subset_size=50)
    assert cross > 10 * abs(same)


def test_compute_features_batches_and_iterables():
    extractor = TinyFeatures()
    images = torch.rand(7, 3, 32, 32) * 2 - 1
    whole = compute_features(extractor, images, batch_size=7)
    assert whole.dtype == torch.float64 and whole.shape == (7, 262)
    assert torch.allclose(compute_features(extractor, images, batch_size=3), whole, atol=1e-6)
    assert torch.allclose(compute_features(extractor, iter(images.split(2))), whole, atol=1e-6)
    with pytest.raises(UnpairedError, match="empty"):
        compute_features(extractor, [])


def test_builtin_extractors_listing():
    table = builtin_extractors()
    assert {"inception", "tiny"} <= set(table)
    assert table["inception"][0] is InceptionFID
    factory, help_text = table["tiny"]
    assert "NOT comparable" in help_text
    assert factory().dim == 262
