"""The bad-input corpus: every file is made here, in memory, when a test asks for it.

* ``CASE_FILES``: case images and DICOM files, each refused with a reason (``refused`` is a fragment of it) or
  imported and checked (``check`` reads the stored PNG);
* ``archive_*``: zip archives (path traversal, a zip bomb, bad CRC, labels naming missing files);
* ``LABEL_CSVS``: labels CSVs with wrong columns, Latin-1 text and bad values;
* ``CHECKPOINT_FILES``: generator and classifier files that are not checkpoints, truncated, pickles whose
  opcodes (REDUCE, BUILD, INST, OBJ, NEWOBJ, STACK_GLOBAL) would run a command, and state dicts with wrong
  shapes, keys or configs.

``python -m tests.bad_inputs.corpus OUT`` writes them all (the checkpoints from freshly made tiny models).
"""

from __future__ import annotations

import io
import pickle
import struct
import sys
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

SIDE = 64  # the side of the images that should be imported (the app's shorter-side minimum is 32)


# ------------------------------------------------------------------------------------------------------------
# Images


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def ramp(width: int = SIDE, height: int = SIDE, top: float = 255) -> np.ndarray:
    """A horizontal ramp from 0 (left) to ``top`` (right), float64 [height, width]."""
    return np.tile(np.linspace(0, top, width), (height, 1))


def noise_png(width: int = SIDE, height: int = SIDE, seed: int = 0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width), dtype=np.uint8)
    return encoded(Image.fromarray(pixels), "PNG")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def header_bomb_png(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` 8-bit grey pixels but whose data holds a few rows of
    zeros: a few hundred bytes that would decompress into ``width * height`` bytes if decoded."""
    rows = zlib.compress(b"\0" * ((width + 1) * 4), 9)
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", rows) + _chunk(b"IEND", b"")


def ztxt_bomb_png(megabytes: int = 64) -> bytes:
    """A valid image with a zTXt chunk that decompresses into ``megabytes`` MB of text."""
    compressor = zlib.compressobj(9)
    block = b"A" * (1 << 20)
    text = b"".join(compressor.compress(block) for _ in range(megabytes)) + compressor.flush()
    png = noise_png()
    end = png.rindex(b"IEND") - 4
    return png[:end] + _chunk(b"zTXt", b"Comment\0\0" + text) + png[end:]


def two_frame_tiff() -> bytes:
    frames = [Image.fromarray(ramp().astype(np.uint8)), Image.fromarray(255 - ramp().astype(np.uint8))]
    return encoded(frames[0], "TIFF", save_all=True, append_images=frames[1:])


def nan_tiff() -> bytes:
    pixels = ramp().astype(np.float32)
    pixels[10, 10] = np.nan
    return encoded(Image.fromarray(pixels, mode="F"), "TIFF")


def sixteen_bit_png() -> bytes:
    return encoded(Image.fromarray(ramp(top=65535).astype(np.uint16)), "PNG")


def rgba_png() -> bytes:
    """White everywhere; the left half opaque, the right half fully transparent."""
    pixels = np.full((SIDE, SIDE, 4), 255, dtype=np.uint8)
    pixels[:, SIDE // 2 :, 3] = 0
    return encoded(Image.fromarray(pixels, mode="RGBA"), "PNG")


def la_png() -> bytes:
    grey = ramp().astype(np.uint8)
    return encoded(Image.fromarray(np.stack([grey, np.full_like(grey, 255)], axis=-1), mode="LA"), "PNG")


def palette_png(transparent_index: int | None = None) -> bytes:
    """A ramp drawn with a 256-entry grey palette (index i is grey i)."""
    image = Image.fromarray(ramp().astype(np.uint8), mode="L").convert("P")
    image.putpalette([value for grey in range(256) for value in (grey, grey, grey)])
    options = {} if transparent_index is None else {"transparency": transparent_index}
    return encoded(image, "PNG", **options)


def palette_with_transparency_png() -> bytes:
    """A bright image (palette index 200) whose left half uses the transparent index 0."""
    pixels = np.full((SIDE, SIDE), 200, dtype=np.uint8)
    pixels[:, : SIDE // 2] = 0
    image = Image.fromarray(pixels, mode="L").convert("P")
    image.putpalette([value for grey in range(256) for value in (grey, grey, grey)])
    return encoded(image, "PNG", transparency=0)


def cmyk_tiff() -> bytes:
    """Black ink (K) rising from 0 (left) to 255 (right), no colour ink: the grey falls from white to black."""
    pixels = np.zeros((SIDE, SIDE, 4), dtype=np.uint8)
    pixels[..., 3] = ramp().astype(np.uint8)
    return encoded(Image.fromarray(pixels, mode="CMYK"), "TIFF")


def bilevel_png() -> bytes:
    pixels = np.zeros((SIDE, SIDE), dtype=bool)
    pixels[:, SIDE // 2 :] = True
    return encoded(Image.fromarray(pixels), "PNG")


def jpeg_bytes() -> bytes:
    return encoded(Image.fromarray(ramp().astype(np.uint8)), "JPEG", quality=95)


def gif_bytes() -> bytes:
    return encoded(Image.fromarray(ramp().astype(np.uint8)), "GIF")


def truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


SVG = (
    b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64">'
    b'<rect width="64" height="64" fill="#fff"/><script>alert(1)</script></svg>\n'
)
HTML = b"<!doctype html>\n<html><body><img src=x onerror=alert(1)><h1>Not an image</h1></body></html>\n"
TEXT = b"Patient: Doe^Jane\nThis is a text file with an image's name.\n"
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


# ------------------------------------------------------------------------------------------------------------
# DICOM


def dicom(pixels: np.ndarray | None = None, **changes) -> bytes:
    """A 16-bit DICOM radiograph (the identifying tags of ``tests.helpers.studies.dicom_bytes``) with the
    elements in ``changes`` set (a value of None deletes the element; ``TransferSyntaxUID`` goes to the file
    meta)."""
    import pydicom

    from tests.helpers.studies import dicom_bytes

    data = dicom_bytes(ramp(top=4000) if pixels is None else pixels)
    ds = pydicom.dcmread(io.BytesIO(data))
    for keyword, value in changes.items():
        target = ds.file_meta if keyword == "TransferSyntaxUID" else ds
        if value is None:
            delattr(target, keyword)
        else:
            setattr(target, keyword, value)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=False)
    return buffer.getvalue()


def dicom_jpeg2000_junk() -> bytes:
    from pydicom.encaps import encapsulate

    return dicom(
        TransferSyntaxUID="1.2.840.10008.1.2.4.90",
        PixelData=encapsulate([b"\xff\x4f\xff\x51" + b"junk" * 64]),
    )


def dicom_truncated() -> bytes:
    data = dicom()
    return data[: len(data) - 3000]  # cut inside the pixel data


def dicom_with_every_identifier() -> bytes:
    """A DICOM radiograph carrying every identifying element the de-identification removes (with a value of
    its VR), a nested sequence with a person's name, and private tags."""
    import pydicom
    from pydicom.datadict import dictionary_VR, tag_for_keyword
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    from tests.helpers.studies import dicom_bytes

    ds = pydicom.dcmread(io.BytesIO(dicom_bytes(ramp(top=4000))))
    for keyword in sorted(PHI_KEYWORDS):
        vr = dictionary_VR(tag_for_keyword(keyword))
        if vr == "SQ":
            item = Dataset()
            item.PatientName = "Nested^Person"
            setattr(ds, keyword, Sequence([item]))
        else:
            setattr(ds, keyword, PHI_VALUES.get(vr, "PHI-VALUE"))
    ds.add_new(0x00091010, "LO", "Private creator")
    ds.add_new(0x00091011, "LO", "private patient code")
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


#: A value of each VR for the identifying elements (dates, times and names are removed by VR as well).
PHI_VALUES = {
    "PN": "Doe^Jane",
    "DA": "19500101",
    "TM": "101500",
    "DT": "19500101101500",
    "AS": "074Y",
    "DS": "70.5",
    "IS": "42",
    "UI": "1.2.826.0.1.3680043.8.498.1",
    "CS": "PHI",
}
#: Every element the de-identification must remove, by keyword: the identifying keywords and elements whose
#: VR is a name, a date or a time.
PHI_KEYWORDS = frozenset(
    {
        "AccessionNumber",
        "AdditionalPatientHistory",
        "AdmissionID",
        "BranchOfService",
        "CountryOfResidence",
        "CurrentPatientLocation",
        "DerivationDescription",
        "DeviceSerialNumber",
        "DeviceUID",
        "EthnicGroup",
        "FillerOrderNumberImagingServiceRequest",
        "ImageComments",
        "InstitutionAddress",
        "InstitutionalDepartmentName",
        "InstitutionName",
        "IssuerOfPatientID",
        "MedicalAlerts",
        "MedicalRecordLocator",
        "MilitaryRank",
        "Occupation",
        "OtherPatientIDs",
        "OtherPatientIDsSequence",
        "OtherPatientNames",
        "PatientAddress",
        "PatientAge",
        "PatientBirthDate",
        "PatientBirthName",
        "PatientBirthTime",
        "PatientComments",
        "PatientID",
        "PatientInsurancePlanCodeSequence",
        "PatientMotherBirthName",
        "PatientName",
        "PatientReligiousPreference",
        "PatientSex",
        "PatientSize",
        "PatientTelephoneNumbers",
        "PatientWeight",
        "PerformedProcedureStepID",
        "PlacerOrderNumberImagingServiceRequest",
        "ReferencedPatientSequence",
        "ReferencedStudySequence",
        "ReferringPhysicianAddress",
        "ReferringPhysicianTelephoneNumbers",
        "RequestAttributesSequence",
        "RequestingService",
        "ScheduledProcedureStepID",
        "StationName",
        "StudyDescription",
        "StudyID",
        "RequestedProcedureID",
        # by VR: names, dates, times
        "ReferringPhysicianName",
        "PerformingPhysicianName",
        "OperatorsName",
        "StudyDate",
        "SeriesDate",
        "AcquisitionDate",
        "ContentDate",
        "StudyTime",
        "SeriesTime",
        "AcquisitionDateTime",
    }
)


# ------------------------------------------------------------------------------------------------------------
# Case files


def _stored_ramp_rises(stored: np.ndarray, meta: dict) -> None:
    columns = stored.astype(float).mean(axis=0)
    assert columns[0] < 20 and columns[-1] > 235, columns
    assert np.all(np.diff(columns) >= -2), columns


def _stored_ramp_falls(stored: np.ndarray, meta: dict) -> None:
    _stored_ramp_rises(stored[:, ::-1], meta)


def _sixteen_bit_keeps_its_range(stored: np.ndarray, meta: dict) -> None:
    _stored_ramp_rises(stored, meta)
    middle = stored[:, stored.shape[1] // 2].astype(float).mean()
    assert 100 < middle < 156, middle  # not clipped to white as 8-bit data would be
    assert meta["bits"] == 16


def _left_white_right_black(stored: np.ndarray, meta: dict) -> None:
    half = stored.shape[1] // 2
    assert stored[:, : half - 1].min() > 245 and stored[:, half + 1 :].max() < 10, stored


def _left_black_right_bright(stored: np.ndarray, meta: dict) -> None:
    half = stored.shape[1] // 2
    assert stored[:, : half - 1].max() < 10 and stored[:, half + 1 :].min() > 190, stored


def _jpeg_source(stored: np.ndarray, meta: dict) -> None:
    _stored_ramp_rises(stored, meta)
    assert meta["format"] == "jpeg"


@dataclass(frozen=True)
class CaseFile:
    """A file offered as a case. ``refused``: a fragment of the reason it is refused (None: it is imported,
    and ``check(stored_png_uint8, source_metadata)`` holds). ``engine_refuses``: the engine's own reader (the
    command line, with its own limits) refuses it too."""

    name: str
    make: Callable[[], bytes]
    refused: str | None = None
    engine_refuses: bool = False
    check: Callable[[np.ndarray, dict], None] | None = None

    def __str__(self) -> str:
        return self.name


NOT_AN_IMAGE = "not a PNG, JPEG, TIFF or BMP image"

CASE_FILES: list[CaseFile] = [
    # empty, truncated, disguised
    CaseFile("empty.png", lambda: b"", "the file is empty", engine_refuses=True),
    CaseFile("truncated.png", lambda: truncated(noise_png()), "truncated", engine_refuses=True),
    CaseFile("truncated.jpg", lambda: truncated(jpeg_bytes()), "truncated", engine_refuses=True),
    CaseFile("text.png", lambda: TEXT, NOT_AN_IMAGE, engine_refuses=True),
    CaseFile("page.jpg", lambda: HTML, NOT_AN_IMAGE, engine_refuses=True),
    CaseFile("drawing.png", lambda: SVG, NOT_AN_IMAGE, engine_refuses=True),
    CaseFile("document.tif", lambda: PDF, NOT_AN_IMAGE, engine_refuses=True),
    CaseFile("animation.png", gif_bytes, NOT_AN_IMAGE, engine_refuses=True),
    CaseFile("notes.txt", lambda: TEXT, "unsupported file type .txt", engine_refuses=True),
    # bombs and sizes
    CaseFile("header-bomb.png", lambda: header_bomb_png(12000, 12000), "50,000,000 allowed", True),
    CaseFile("pillow-bomb.png", lambda: header_bomb_png(30000, 30000), "too many pixels", True),
    CaseFile("ztxt-bomb.png", ztxt_bomb_png, "too large", engine_refuses=True),
    CaseFile("one-pixel.png", lambda: noise_png(1, 1), "shorter side must be at least 32", True),
    CaseFile("strip.png", lambda: noise_png(4000, 10), "shorter side must be at least 32", True),
    CaseFile("panorama.png", lambda: noise_png(400, 100), "at most 3 times its shorter side", True),
    CaseFile("small.png", lambda: noise_png(20, 20), "shorter side must be at least 32"),
    CaseFile("blank.png", lambda: encoded(Image.new("L", (SIDE, SIDE)), "PNG"), "the same value"),
    CaseFile("two-frames.tif", two_frame_tiff, "2 frames", engine_refuses=True),
    CaseFile("nan.tif", nan_tiff, "NaN", engine_refuses=True),
    # modes that are converted
    CaseFile("sixteen-bit.png", sixteen_bit_png, check=_sixteen_bit_keeps_its_range),
    CaseFile("rgba.png", rgba_png, check=_left_white_right_black),
    CaseFile("grey-alpha.png", la_png, check=_stored_ramp_rises),
    CaseFile("palette.png", palette_png, check=_stored_ramp_rises),
    CaseFile("palette-transparent.png", palette_with_transparency_png, check=_left_black_right_bright),
    CaseFile("cmyk.tif", cmyk_tiff, check=_stored_ramp_falls),
    CaseFile("bilevel.png", bilevel_png, check=_left_black_right_bright),
    CaseFile("jpeg-named.png", jpeg_bytes, check=_jpeg_source),
    # DICOM
    CaseFile("text.dcm", lambda: TEXT, "not a readable DICOM file", engine_refuses=True),
    CaseFile("no-pixels.dcm", lambda: dicom(PixelData=None), "holds no pixel data", engine_refuses=True),
    CaseFile("broken-syntax.dcm", lambda: dicom(TransferSyntaxUID="1.2.3.4.5.6"), "cannot be decoded", True),
    CaseFile("jpeg2000-junk.dcm", dicom_jpeg2000_junk, "cannot be decoded", engine_refuses=True),
    CaseFile("truncated.dcm", dicom_truncated, "DICOM", engine_refuses=True),
    CaseFile("burned-in.dcm", lambda: dicom(BurnedInAnnotation="YES"), "BurnedInAnnotation = YES"),
    CaseFile("two-frames.dcm", lambda: dicom(NumberOfFrames=2), "2 frame(s)", engine_refuses=True),
    CaseFile("colour.dcm", lambda: dicom(SamplesPerPixel=3), "3 sample(s)", engine_refuses=True),
    CaseFile("huge.dcm", lambda: dicom(Rows=12000, Columns=12000), "50,000,000 allowed", True),
    CaseFile("one-pixel.dcm", lambda: dicom(ramp(1, 1, 4000)), "at least 32", engine_refuses=True),
    CaseFile(
        "monochrome1.dcm", lambda: dicom(PhotometricInterpretation="MONOCHROME1"), check=_stored_ramp_falls
    ),
    CaseFile("monochrome2.dcm", dicom, check=_stored_ramp_rises),
]
REFUSED_CASE_FILES = [case for case in CASE_FILES if case.refused]
ACCEPTED_CASE_FILES = [case for case in CASE_FILES if not case.refused]


# ------------------------------------------------------------------------------------------------------------
# Zip archives


def zip_bytes(members: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)  # kept as written, ``..`` and leading ``/`` included
            info.compress_type = compression
            archive.writestr(info, data)
    return buffer.getvalue()


def archive_with_traversal() -> bytes:
    """Members whose names climb out of any folder they would be extracted to."""
    return zip_bytes(
        {
            "../../escaped.png": noise_png(seed=1),
            "/tmp/absolute.png": noise_png(seed=2),
            "..\\..\\windows.png": noise_png(seed=3),
            "cases/../../../deep.png": noise_png(seed=4),
        }
    )


def archive_bomb(megabytes: int = 48) -> bytes:
    """One entry that inflates from about 50 KB to ``megabytes`` MB (ratio about 1000)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = b"\0" * (1 << 20)
    deflated = b"".join(compressor.compress(block) for _ in range(megabytes)) + compressor.flush()
    size = megabytes << 20
    crc = 0
    for _ in range(megabytes):
        crc = zlib.crc32(block, crc)
    return _raw_zip("bomb.png", deflated, size=size, crc=crc)


def _raw_zip(name: str, deflated: bytes, *, size: int, crc: int) -> bytes:
    """A zip archive of one deflated entry, written by hand (no need to hold the inflated bytes)."""
    encoded_name = name.encode()
    local = struct.pack(
        "<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, crc, len(deflated), size, len(encoded_name), 0
    )
    central = struct.pack(
        "<IHHHHHHIIIHHHHHII",
        0x02014B50,
        20,
        20,
        0,
        8,
        0,
        0,
        crc,
        len(deflated),
        size,
        len(encoded_name),
        0,
        0,
        0,
        0,
        0,
        0,
    )
    body = local + encoded_name + deflated
    directory = central + encoded_name
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(directory), len(body), 0)
    return body + directory + end


def archive_with_bad_crc(good: dict[str, bytes]) -> bytes:
    """``good`` members stored uncompressed, and ``corrupt.png`` whose bytes no longer match its CRC."""
    corrupt = noise_png(seed=9)
    data = bytearray(zip_bytes({**good, "corrupt.png": corrupt}, compression=zipfile.ZIP_STORED))
    start = bytes(data).index(corrupt)
    data[start + len(corrupt) // 2] ^= 0xFF
    return bytes(data)


# ------------------------------------------------------------------------------------------------------------
# Labels CSVs


@dataclass(frozen=True)
class LabelsCsv:
    name: str
    data: bytes
    refused: str

    def __str__(self) -> str:
        return self.name


#: Each names case000.png and case001.png, the two files sent with it.
LABEL_CSVS: list[LabelsCsv] = [
    LabelsCsv("wrong-columns.csv", b"file,lbl\ncase000.png,1\n", "needs a 'filename' column"),
    LabelsCsv(
        "misspelt-column.csv", b"filename,labels\ncase000.png,1\n", "its columns are 'filename', 'labels'"
    ),
    LabelsCsv("latin-1.csv", "filename,label\ncase000.png,1\ncafé.png,0\n".encode("latin-1"), "not UTF-8"),
    LabelsCsv("bad-label.csv", b"filename,label\ncase000.png,maybe\n", "line 2: label 'maybe' is not 0/1"),
    LabelsCsv("bad-split.csv", b"filename,label,split\ncase000.png,1,train\n", "split 'train' is not one of"),
    LabelsCsv("twice.csv", b"filename,label\ncase000.png,1\ncase000.png,0\n", "named a second time"),
    LabelsCsv("ragged.csv", b"filename,label\ncase000.png,1,extra\n", "3 cells for 2 columns"),
    LabelsCsv("empty-name.csv", b"filename,label\n,1\n", "the filename is empty"),
    LabelsCsv("binary.csv", b"filename\x00,label\n\x00\x01\x02,1\n", "NUL"),
    LabelsCsv("missing-file.csv", b"filename,label\ncase000.png,1\nmissing.png,0\n", "not in this import"),
]


# ------------------------------------------------------------------------------------------------------------
# Checkpoints


def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _text(text: str) -> bytes:
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def _short_text(text: str) -> bytes:
    data = text.encode()
    return b"\x8c" + bytes([len(data)]) + data


PROTO2 = b"\x80\x02"


def code_pickles(command: str) -> dict[str, bytes]:
    """Pickles that run ``command`` in a shell when loaded by ``pickle.loads``, one per opcode that can call
    code: REDUCE, BUILD (a ``__setstate__`` planted by a first BUILD), INST, OBJ, NEWOBJ (with BUILD) and
    STACK_GLOBAL (protocol 4)."""
    run = _global("os", "system")
    plant_and_call = b"}" + _text("__setstate__") + run + b"sb" + _text(command) + b"b"
    return {
        "REDUCE": PROTO2 + run + _text(command) + b"\x85R.",
        "BUILD": PROTO2 + _global("collections", "OrderedDict") + b")R" + plant_and_call + b".",
        "INST": PROTO2 + b"(" + _text(command) + b"ios\nsystem\n.",
        "OBJ": PROTO2 + b"(" + run + _text(command) + b"o.",
        "NEWOBJ": PROTO2 + _global("types", "SimpleNamespace") + b")\x81" + plant_and_call + b".",
        "STACK_GLOBAL": b"\x80\x04"
        + _short_text("os")
        + _short_text("system")
        + b"\x93"
        + _text(command)
        + b"\x85R.",
    }


def torch_zip_with_pickle(payload: bytes) -> bytes:
    """A ``torch.save`` zip archive whose ``data.pkl`` is ``payload``."""
    import torch

    buffer = io.BytesIO()
    torch.save({"weights": torch.zeros(2)}, buffer)
    source = zipfile.ZipFile(io.BytesIO(buffer.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
        for info in source.infolist():
            data = payload if info.filename.endswith("/data.pkl") else source.read(info)
            archive.writestr(info.filename, data)
    return out.getvalue()


@dataclass(frozen=True)
class Models:
    """Working files the bad checkpoints are derived from, and the file a code pickle would create."""

    generator: Path  # this tool's .pt with G_ema and D (tests.helpers.studies.tiny_model_files)
    classifier: Path  # this tool's classifier checkpoint (tests.helpers.studies.tiny_lab_model_files)
    marker: Path


def _generator_record_changed(models: Models, change: Callable[[dict], None]) -> bytes:
    import torch

    data = torch.load(models.generator, weights_only=True)
    change(data["networks"]["G_ema"])
    buffer = io.BytesIO()
    torch.save(data, buffer)
    return buffer.getvalue()


def _classifier_changed(models: Models, change: Callable[[dict], None]) -> bytes:
    import torch

    data = torch.load(models.classifier, weights_only=True)
    change(data)
    buffer = io.BytesIO()
    torch.save(data, buffer)
    return buffer.getvalue()


def _reshape_first(state: dict) -> None:
    key = next(iter(state))
    state[key] = state[key].reshape(-1)[:3].clone()


def _rename_first(state: dict) -> None:
    key = next(iter(state))
    state["renamed." + key] = state.pop(key)


def _torch_bytes(obj) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


@dataclass(frozen=True)
class CheckpointFile:
    """A file offered as a generator and/or a classifier. ``generator`` / ``classifier``: a fragment of the
    refusal when it is loaded as that (None: not tried as that)."""

    name: str
    make: Callable[[Models], bytes]
    generator: str | None
    classifier: str | None
    runs_code: bool = False

    def __str__(self) -> str:
        return self.name


NOT_TORCH = r"not a classifier file \(a PyTorch file\)"
NOT_CHECKPOINT = "neither a network pickle nor a PyTorch checkpoint"
REFUSED_CODE = "not allowed|Unsupported global|Unsupported operand|asks to run code"

CHECKPOINT_FILES: list[CheckpointFile] = [
    CheckpointFile("empty.pt", lambda m: b"", "is empty", "an empty file|is empty"),
    CheckpointFile("text.pt", lambda m: TEXT, f"a text file, {NOT_CHECKPOINT}", f"a text file, {NOT_TORCH}"),
    CheckpointFile(
        "page.pt", lambda m: HTML, f"an HTML page, {NOT_CHECKPOINT}", f"an HTML page, {NOT_TORCH}"
    ),
    CheckpointFile(
        "image.pt", lambda m: noise_png(), f"a PNG image, {NOT_CHECKPOINT}", f"a PNG image, {NOT_TORCH}"
    ),
    CheckpointFile(
        "stack-underflow.pkl", lambda m: PROTO2 + b".", "not a readable network pickle", "not a readable"
    ),
    CheckpointFile(
        "junk-zip.pt", lambda m: b"PK\x03\x04" + b"\x00" * 200, "not a readable checkpoint", "not a readable"
    ),
    CheckpointFile(
        "truncated.pt", lambda m: truncated(m.generator.read_bytes()), "not a readable", "not a readable"
    ),
    CheckpointFile(
        "truncated-classifier.pt",
        lambda m: truncated(m.classifier.read_bytes()),
        "not a readable",
        "not a readable",
    ),
    CheckpointFile(
        "truncated-pickle.pkl",
        lambda m: truncated(pickle.dumps({"G": {"weights": list(range(200))}}, protocol=2)),
        "not a readable network pickle",
        "not a readable",
    ),
    *[
        CheckpointFile(
            f"runs-code-{opcode.lower()}.pkl",
            lambda m, o=opcode: code_pickles(f"touch {m.marker}")[o],
            REFUSED_CODE,
            REFUSED_CODE,
            runs_code=True,
        )
        for opcode in ("REDUCE", "BUILD", "INST", "OBJ", "NEWOBJ", "STACK_GLOBAL")
    ],
    CheckpointFile(
        "runs-code-in-zip.pt",
        lambda m: torch_zip_with_pickle(code_pickles(f"touch {m.marker}")["REDUCE"]),
        REFUSED_CODE,
        REFUSED_CODE,
        runs_code=True,
    ),
    CheckpointFile(
        "wrong-shape-generator.pt",
        lambda m: _generator_record_changed(m, lambda record: _reshape_first(record["state_dict"])),
        "do not fit",
        None,
    ),
    CheckpointFile(
        "wrong-keys-generator.pt",
        lambda m: _generator_record_changed(m, lambda record: _rename_first(record["state_dict"])),
        "do not fit",
        None,
    ),
    CheckpointFile(
        "huge-config-generator.pt",
        lambda m: _generator_record_changed(m, lambda record: record["init_kwargs"].update(z_dim=10**7)),
        "larger than the weights",
        None,
    ),
    CheckpointFile(
        "bad-config-generator.pt",
        lambda m: _generator_record_changed(
            m, lambda record: record["init_kwargs"].update(img_resolution=17)
        ),
        "cannot build Generator",
        None,
    ),
    CheckpointFile(
        "not-networks.pt",
        lambda m: _torch_bytes({"format": "something else", "epoch": 3}),
        "not a network checkpoint",
        "neither a classifier checkpoint of this tool nor a TorchScript file",
    ),
    CheckpointFile(
        "wrong-shape-classifier.pt",
        lambda m: _classifier_changed(m, lambda data: _reshape_first(data["state_dict"])),
        None,
        "does not fit",
    ),
    CheckpointFile(
        "wrong-keys-classifier.pt",
        lambda m: _classifier_changed(m, lambda data: _rename_first(data["state_dict"])),
        None,
        "does not fit",
    ),
    CheckpointFile(
        "unknown-architecture.pt",
        lambda m: _classifier_changed(m, lambda data: data["config"].update(arch="alexnet-9000")),
        None,
        "names architecture 'alexnet-9000'",
    ),
    CheckpointFile(
        "huge-config-classifier.pt",
        lambda m: _classifier_changed(m, lambda data: data["config"].update(stem_channels=200_000)),
        None,
        "larger than the weights",
    ),
]


# ------------------------------------------------------------------------------------------------------------


def write_corpus(out: Path) -> list[Path]:
    """Write every file of the corpus under ``out`` (checkpoints derived from tiny models made there)."""
    from tests.helpers.studies import tiny_lab_model_files

    written = []

    def put(relative: str, data: bytes) -> None:
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written.append(path)

    for case in CASE_FILES:
        put(f"cases/{case.name}", case.make())
    put("dicom/every-identifier.dcm", dicom_with_every_identifier())
    put("zips/traversal.zip", archive_with_traversal())
    put("zips/bomb.zip", archive_bomb())
    put("zips/bad-crc.zip", archive_with_bad_crc({"good.png": noise_png(seed=5)}))
    for labels in LABEL_CSVS:
        put(f"labels/{labels.name}", labels.data)
    generator, classifier = tiny_lab_model_files(out / "good-models")
    models = Models(generator=generator, classifier=classifier, marker=out / "code-was-run")
    for checkpoint in CHECKPOINT_FILES:
        put(f"checkpoints/{checkpoint.name}", checkpoint.make(models))
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "bad-inputs")
    files = write_corpus(target)
    print(f"{len(files)} files written under {target}")
