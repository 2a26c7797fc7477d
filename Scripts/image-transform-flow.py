#!/usr/bin/env python3
"""Image transformations of `strive serve` checked with Pillow (PyPI). Run by
Tests/StriveCLITests/ImageTransformationTests.swift:

    image-transform-flow.py URL SERVICE_KEY [--without-libvips]

The server runs with STRIVE_STORAGE_IMAGE_CACHE_MB=1 (so the variant cache evicts), or, with
--without-libvips, with a libvips it cannot load. Prints one line per step ("ok <step>"); any failure
raises and exits non-zero.
"""
import io
import os
import sys

import httpx
from PIL import Image

URL, KEY = sys.argv[1], sys.argv[2]
WITHOUT_LIBVIPS = "--without-libvips" in sys.argv[3:]
HEADERS = {"apikey": KEY, "Authorization": f"Bearer {KEY}"}
http = httpx.Client(base_url=URL + "/storage/v1", headers=HEADERS, timeout=60)


def encoded(image, format, **options):
    out = io.BytesIO()
    image.save(out, format=format, **options)
    return out.getvalue()


def upload(bucket, name, data, type):
    response = http.post(f"object/{bucket}/{name}", content=data, headers={"content-type": type, "x-upsert": "true"})
    assert response.status_code == 200, response.text


def render(bucket, name, accept="image/*", **query):
    return http.get(f"render/image/authenticated/{bucket}/{name}", params=query, headers={"accept": accept})


def opened(response):
    assert response.status_code == 200, (response.status_code, response.text)
    return Image.open(io.BytesIO(response.content))


def metric(series):
    """A sample of /metrics (the service key may read it); 0 when the series has not moved yet."""
    text = httpx.get(f"{URL}/metrics", headers=HEADERS).text
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return 0.0


def without_libvips(bucket):
    png = encoded(Image.new("RGB", (64, 64), (10, 200, 30)), "PNG")
    upload(bucket, "green.png", png, "image/png")
    refused = render(bucket, "green.png", width=32)
    assert refused.status_code == 501, (refused.status_code, refused.text)
    body = refused.json()
    assert body["error"] == "FeatureNotEnabled" and "libvips" in body["message"], body
    assert refused.content != png, "never the untransformed bytes"
    original = http.get(f"object/{bucket}/green.png")
    assert original.status_code == 200 and original.content == png
    print("ok without libvips: 501 naming it, downloads unaffected", flush=True)


def main():
    bucket = f"images{os.getpid()}"
    assert http.post("bucket", json={"id": bucket, "name": bucket, "public": True}).status_code == 200
    if WITHOUT_LIBVIPS:
        return without_libvips(bucket)

    photo = Image.new("RGB", (1200, 800))
    for x in range(0, 1200, 40):
        for y in range(0, 800, 40):
            photo.paste((x % 255, y % 255, (x + y) % 255), (x, y, x + 40, y + 40))
    upload(bucket, "photo.jpg", encoded(photo, "JPEG", quality=95), "image/jpeg")

    for query, size in [
        ({"width": 300, "height": 300, "resize": "cover"}, (300, 300)),
        ({"width": 300, "height": 300, "resize": "contain"}, (300, 200)),
        ({"width": 300, "height": 100, "resize": "fill"}, (300, 100)),
        ({"width": 600}, (600, 400)),
        ({"height": 200}, (300, 200)),
        ({"width": 2000}, (1200, 800)),  # never enlarged
    ]:
        got = opened(render(bucket, "photo.jpg", **query)).size
        assert got == size, (query, got, size)
    print("ok dimensions per resize mode", flush=True)

    webp = render(bucket, "photo.jpg", accept="image/webp,image/*", width=300)
    assert webp.headers["content-type"] == "image/webp" and opened(webp).format == "WEBP"
    origin = render(bucket, "photo.jpg", accept="image/webp,image/*", width=300, format="origin")
    assert origin.headers["content-type"] == "image/jpeg" and opened(origin).format == "JPEG"
    plain = opened(render(bucket, "photo.jpg", width=300))
    assert plain.format == "JPEG", ("without webp in Accept: the original's format", plain.format)
    low = render(bucket, "photo.jpg", width=600, quality=20, format="origin")
    high = render(bucket, "photo.jpg", width=600, quality=95, format="origin")
    assert len(low.content) < len(high.content), (len(low.content), len(high.content))
    print("ok format and quality", flush=True)

    # EXIF orientation 6 (rotate 90° clockwise to display): a 400x200 image stored sideways displays 200x400.
    sideways = Image.new("RGB", (400, 200), (200, 30, 30))
    exif = Image.Exif()
    exif[0x0112] = 6
    upload(bucket, "sideways.jpg", encoded(sideways, "JPEG", exif=exif.tobytes()), "image/jpeg")
    assert opened(render(bucket, "sideways.jpg", width=100)).size == (100, 200)
    print("ok EXIF orientation honoured", flush=True)

    alpha = Image.new("RGBA", (200, 200), (0, 0, 255, 0))
    alpha.paste((255, 0, 0, 255), (50, 50, 150, 150))
    upload(bucket, "alpha.png", encoded(alpha, "PNG"), "image/png")
    result = opened(render(bucket, "alpha.png", width=100))
    assert result.format == "PNG" and result.mode == "RGBA" and result.getpixel((2, 2))[3] == 0, (result.mode, result.getpixel((2, 2)))
    print("ok a PNG keeps its alpha", flush=True)

    frames = [Image.new("RGB", (120, 80), color) for color in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]]
    animated = io.BytesIO()
    frames[0].save(animated, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    upload(bucket, "animated.gif", animated.getvalue(), "image/gif")
    assert opened(render(bucket, "animated.gif", width=60)).size == (60, 40)
    print("ok an animated GIF", flush=True)

    # A 20,000 x 20,000 PNG of one colour compresses to a few hundred KiB and would decode to 1.6 GB.
    bomb = encoded(Image.new("L", (20000, 20000), 0), "PNG", compress_level=1)
    upload(bucket, "bomb.png", bomb, "image/png")
    refused = render(bucket, "bomb.png", width=100)
    assert refused.status_code == 413, (refused.status_code, refused.text)
    upload(bucket, "notes.txt", b"not an image at all", "text/plain")
    assert render(bucket, "notes.txt", width=100).status_code == 415
    assert render(bucket, "photo.jpg", width=0).status_code == 400
    assert render(bucket, "photo.jpg", resize="squash").status_code == 400
    print("ok a bomb, a non-image and bad options refused", flush=True)

    first = render(bucket, "photo.jpg", width=300)
    again = render(bucket, "photo.jpg", width=300, **{})
    assert first.headers["etag"] == again.headers["etag"]
    cached = http.get(f"render/image/authenticated/{bucket}/photo.jpg", params={"width": 300},
                      headers={"accept": "image/*", "if-none-match": first.headers["etag"]})
    assert cached.status_code == 304, cached.status_code
    public = httpx.get(f"{URL}/storage/v1/render/image/public/{bucket}/photo.jpg", params={"width": 300})
    assert public.status_code == 200 and Image.open(io.BytesIO(public.content)).size == (300, 200)
    print("ok conditional requests and the public route", flush=True)

    hits = metric('strive_storage_image_variant_requests_total{cache="hit"}')
    misses = metric('strive_storage_image_variant_requests_total{cache="miss"}')
    kept = render(bucket, "photo.jpg", width=240)
    again = render(bucket, "photo.jpg", width=240)
    assert kept.content == again.content and opened(again).size == (240, 160), opened(again).size
    assert metric('strive_storage_image_variant_requests_total{cache="miss"}') == misses + 1
    assert metric('strive_storage_image_variant_requests_total{cache="hit"}') == hits + 1
    print("ok a variant is transformed once, then served from the cache", flush=True)

    # The server keeps 1 MiB of variants: full-size variants at ten qualities do not fit.
    evicted = metric("strive_storage_image_variants_evicted_total")
    for quality in range(90, 100):
        assert opened(render(bucket, "photo.jpg", width=1200, quality=quality, format="origin")).size == (1200, 800)
    assert metric("strive_storage_image_variants_evicted_total") > evicted
    assert opened(render(bucket, "photo.jpg", width=1200, quality=90, format="origin")).size == (1200, 800)
    print("ok the variant cache evicts beyond its bound", flush=True)

    signed = http.post(f"object/sign/{bucket}/photo.jpg",
                       json={"expiresIn": 60, "transform": {"width": 150, "height": 150, "resize": "contain"}})
    assert signed.status_code == 200, signed.text
    path = signed.json()["signedURL"]
    assert path.startswith(f"/render/image/sign/{bucket}/photo.jpg?token="), path
    anyone = httpx.get(f"{URL}/storage/v1{path}")
    assert Image.open(io.BytesIO(anyone.content)).size == (150, 100), anyone.status_code
    widened = httpx.get(f"{URL}/storage/v1{path}&width=600")
    assert Image.open(io.BytesIO(widened.content)).size == (150, 100), "the query cannot change a signed transformation"
    bad = http.post(f"object/sign/{bucket}/photo.jpg", json={"expiresIn": 60, "transform": {"width": -5}})
    assert bad.status_code == 400, bad.text
    print("ok signed URLs carry their transformation", flush=True)

    replacement = Image.new("RGB", (900, 300), (0, 0, 0))
    upload(bucket, "photo.jpg", encoded(replacement, "JPEG"), "image/jpeg")
    replaced = render(bucket, "photo.jpg", width=300)
    assert replaced.headers["etag"] != first.headers["etag"] and opened(replaced).size == (300, 100)
    stale = http.get(f"render/image/authenticated/{bucket}/photo.jpg", params={"width": 300},
                     headers={"accept": "image/*", "if-none-match": first.headers["etag"]})
    assert stale.status_code == 200, "a replaced object never answers with its old variant"
    print("ok a replaced object never serves its old variant", flush=True)


main()
