"""Independent readers of protected documents, for the tests of output protection.

The password comes from the environment variable MAD_TEST_PASSWORD (never from the command line).
A wrong password exits with status 3 and "wrong password" on stderr.

    protect_reference.py xlsx-decrypt IN OUT   decrypts an encrypted workbook with msoffcrypto-tool
                                               (checking its integrity HMAC); prints
                                               {"type": "agile", ...} on stdout
    protect_reference.py xlsx-protection FILE  prints the workbook and sheet protection openpyxl
                                               reads, and whether each hash matches the password
                                               (recomputed here with hashlib)
    protect_reference.py zip-extract IN DIR    extracts a zip with pyzipper; prints each entry's
                                               name, compression and WinZip AES fields
"""

import base64
import hashlib
import json
import os
import struct
import sys

WRONG_PASSWORD = 3


def password():
    value = os.environ.get("MAD_TEST_PASSWORD")
    if value is None:
        sys.exit("MAD_TEST_PASSWORD is not set")
    return value


def wrong_password():
    print("wrong password", file=sys.stderr)
    sys.exit(WRONG_PASSWORD)


def xlsx_decrypt(source, target):
    import msoffcrypto
    from msoffcrypto.exceptions import DecryptionError, InvalidKeyError

    with open(source, "rb") as f:
        office = msoffcrypto.OfficeFile(f)
        info = {"encrypted": office.is_encrypted(), "type": getattr(office, "type", None)}
        try:
            office.load_key(password=password(), verify_password=True)
        except (InvalidKeyError, DecryptionError):
            wrong_password()
        with open(target, "wb") as out:
            office.decrypt(out, verify_integrity=True)
    print(json.dumps(info))


def ecma_hash(algorithm, salt, spin_count, text):
    """The ECMA-376 password hash: H(salt + UTF-16LE password), then H(hash + round) rounds."""
    name = {"SHA-512": "sha512", "SHA-256": "sha256", "SHA-1": "sha1"}[algorithm]
    digest = hashlib.new(name, base64.b64decode(salt) + text.encode("utf-16-le")).digest()
    for i in range(int(spin_count)):
        digest = hashlib.new(name, digest + struct.pack("<I", i)).digest()
    return base64.b64encode(digest).decode()


def xlsx_protection(source):
    import openpyxl

    workbook = openpyxl.load_workbook(source)
    secret = password()
    security = workbook.security
    result = {
        "workbook": {
            "lock_structure": bool(security and security.lockStructure),
            "algorithm": security and security.workbookAlgorithmName,
            "spin_count": security and security.workbookSpinCount,
            "hash_matches": bool(security and security.workbookHashValue)
            and ecma_hash(
                security.workbookAlgorithmName,
                security.workbookSaltValue,
                security.workbookSpinCount,
                secret,
            )
            == security.workbookHashValue,
        },
        "sheets": [],
    }
    for sheet in workbook.worksheets:
        p = sheet.protection
        result["sheets"].append(
            {
                "title": sheet.title,
                "protected": bool(p.sheet),
                "algorithm": p.algorithmName,
                "spin_count": p.spinCount,
                "legacy_password": p.password,
                "objects": bool(p.objects),
                "scenarios": bool(p.scenarios),
                "auto_filter": bool(p.autoFilter),
                "sort": bool(p.sort),
                "hash_matches": bool(p.hashValue)
                and ecma_hash(p.algorithmName, p.saltValue, p.spinCount, secret) == p.hashValue,
            }
        )
    print(json.dumps(result))


def aes_field(extra):
    """The WinZip AES extra field (0x9901) of an entry, or None."""
    offset = 0
    while offset + 4 <= len(extra):
        tag, size = struct.unpack_from("<HH", extra, offset)
        data = extra[offset + 4 : offset + 4 + size]
        if tag == 0x9901 and size >= 7:
            vendor_version, vendor, strength, method = struct.unpack_from("<H2sBH", data)
            return {
                "vendor_version": vendor_version,
                "vendor": vendor.decode(),
                "strength_bits": {1: 128, 2: 192, 3: 256}.get(strength),
                "method": method,
            }
        offset += 4 + size
    return None


def zip_extract(source, target):
    import pyzipper

    entries = []
    with pyzipper.AESZipFile(source) as archive:
        archive.setpassword(password().encode("utf-8"))
        for info in archive.infolist():
            try:
                data = archive.read(info)
            except RuntimeError as error:
                if "password" in str(error).lower():
                    wrong_password()
                raise
            path = os.path.join(target, info.filename)
            with open(path, "wb") as out:
                out.write(data)
            entries.append(
                {
                    "name": info.filename,
                    "compress_type": info.compress_type,
                    "flag_bits": info.flag_bits,
                    "crc": info.CRC,
                    "aes": aes_field(info.extra),
                }
            )
    print(json.dumps(entries))


def main():
    command, *args = sys.argv[1:]
    {
        "xlsx-decrypt": xlsx_decrypt,
        "xlsx-protection": xlsx_protection,
        "zip-extract": zip_extract,
    }[command](*args)


if __name__ == "__main__":
    main()
