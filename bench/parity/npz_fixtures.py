"""Small .npz files written by numpy itself, for the .npz/.npy reader's tests (numpy only).

    /opt/seq-venv/bin/python bench/parity/npz_fixtures.py

tests/fixtures/npz_numpy.npz, members (values are exact in f32):
    f4      <f4 [2, 3]   arange(6) * 0.5 - 1                deflated, npy v1.0
    f8      <f8 [3]      [0.125, -2.5, 1024.0]              deflated, npy v1.0
    i4      <i4 [2, 2]   [[-3, 0], [7, 2147483647]]         stored,   npy v1.0
    i8      <i8 []       -9                                 stored,   npy v1.0 (0-d)
    u1      |u1 [4]      [0, 1, 128, 255]                   deflated, npy v1.0
    empty   <f4 [0, 3]                                      stored,   npy v1.0
    v2      <f4 [2]      [1.5, -0.25]                       stored,   npy v2.0 (u32 header length)
    v3      <f4 [1, 1, 2] [3.0, 4.0]                        deflated, npy v3.0 (utf-8 header)
tests/fixtures/npz_fortran.npz: one member `f` = asfortranarray(arange(6, dtype=f4).reshape(2, 3))
    (fortran_order True; the reader must refuse it).
tests/fixtures/npz_bigendian.npz: one member `b`, dtype >f4 (the reader must refuse it).
"""
import io, os, zipfile

import numpy as np
from numpy.lib import format as npformat

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fixtures")


def member(z, name, array, version=(1, 0), deflate=True):
    buf = io.BytesIO()
    npformat.write_array(buf, array, version=version, allow_pickle=False)
    info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    z.writestr(info, buf.getvalue())


with zipfile.ZipFile(os.path.join(OUT, "npz_numpy.npz"), "w") as z:
    member(z, "f4", (np.arange(6, dtype=np.float32) * 0.5 - 1).reshape(2, 3))
    member(z, "f8", np.array([0.125, -2.5, 1024.0], dtype=np.float64))
    member(z, "i4", np.array([[-3, 0], [7, 2147483647]], dtype=np.int32), deflate=False)
    member(z, "i8", np.array(-9, dtype=np.int64), deflate=False)
    member(z, "u1", np.array([0, 1, 128, 255], dtype=np.uint8))
    member(z, "empty", np.zeros((0, 3), dtype=np.float32), deflate=False)
    member(z, "v2", np.array([1.5, -0.25], dtype=np.float32), version=(2, 0), deflate=False)
    member(z, "v3", np.array([[[3.0, 4.0]]], dtype=np.float32), version=(3, 0))
with zipfile.ZipFile(os.path.join(OUT, "npz_fortran.npz"), "w") as z:
    member(z, "f", np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)))
with zipfile.ZipFile(os.path.join(OUT, "npz_bigendian.npz"), "w") as z:
    member(z, "b", np.array([1.0, 2.0], dtype=">f4"))

check = np.load(os.path.join(OUT, "npz_numpy.npz"))
for k in check.files:
    print(k, check[k].dtype, check[k].shape, check[k].ravel()[:4])
