#!/usr/bin/env bash
# download.sh DB_ROOT: LJSpeech-1.1 into DB_ROOT (metadata.csv, wavs/), checked by size and
# checksum. Skips everything when DB_ROOT already holds metadata.csv and wavs/ (offline use).
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 DB_ROOT" 1>&2; exit 1; }
db_root=$1
url=https://data.keithito.com/data/speech/LJSpeech-1.1.tar.bz2
sha256=be1a30453f28eb8dd26af4101ae40cbf2c50413b1bb21936cbcdc6fae3de8aa5  # 2,748,572,632 bytes, as published
if [ -f "${db_root}/metadata.csv" ] && [ -d "${db_root}/wavs" ]; then
    echo "$0: ${db_root} already holds LJSpeech (metadata.csv, wavs/): skipping the download"
    exit 0
fi
parent=$(dirname "${db_root}")
if [ ! -d "${parent}" ]; then  # a mistyped --db_root: nothing to download into, and no folders made
    echo "$0: ${db_root}: not found, and neither is ${parent}; expected the LJSpeech-1.1 folder" \
         "(metadata.csv, wavs/), or a path in an existing folder to download it (2.7 GB) into" 1>&2
    exit 1
fi
archive="${parent}/LJSpeech-1.1.tar.bz2"
if [ ! -f "${archive}" ]; then
    echo "$0: downloading ${url}"
    if ! { curl -fL --retry 3 -o "${archive}.part" "${url}" || wget -O "${archive}.part" "${url}"; }; then
        rm -f "${archive}.part"
        echo "$0: could not download ${url} (no network?); fetch it elsewhere and pass --db_root" \
             "the unpacked LJSpeech-1.1 folder" 1>&2
        exit 1
    fi
    mv "${archive}.part" "${archive}"
fi
echo "${sha256}  ${archive}" | sha256sum -c - || { echo "$0: ${archive}: checksum mismatch, delete it and retry" 1>&2; exit 1; }
tar -xjf "${archive}" -C "${parent}"
[ "$(cd "${parent}" && pwd)/LJSpeech-1.1" = "$(mkdir -p "${db_root}" && cd "${db_root}" && pwd)" ] \
    || { rmdir "${db_root}" 2>/dev/null; mv "${parent}/LJSpeech-1.1" "${db_root}"; }
echo "$0: LJSpeech ready in ${db_root}"
