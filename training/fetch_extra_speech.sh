#!/usr/bin/env bash
# Fetch the three extra training corpora of the v2 recipes (about 7 h, 300+ speakers) into DEST:
#
#     bash training/fetch_extra_speech.sh DEST          # the recipes expect DEST = data/speech-extra
#
# Writes DEST/speechocean762, DEST/npvcc2016 and DEST/picovoice-intent (16 kHz mono WAV, as published; leading and
# trailing silence trimmed from the Picovoice clips with sox) and DEST/SOURCES.tsv (corpus, licence, repository and
# the commit fetched). Where each corpus comes from, its licence and attribution: training/data_sources.md.
# Needs git (with git-lfs if a repository stores its audio in LFS) and sox. Each corpus is fetched from its public
# repository (a shallow, sparse clone of just its audio folder) into DEST/.download and moved into place when
# complete; a corpus already in DEST is replaced. Nothing is written into the LMCodec repository unless DEST is in it
# (data/ is git-ignored); never commit this audio.
#
# The repositories can be overridden (for a mirror, or a local copy) with SPEECHOCEAN762_REPO, NPVCC2016_REPO and
# PICOVOICE_REPO (any URL or path git clone accepts).
set -euo pipefail

if [ $# -ne 1 ] || [ "${1#-}" != "$1" ]; then
  echo "usage: bash training/fetch_extra_speech.sh DEST   (e.g. data/speech-extra; see training/data_sources.md)" >&2
  exit 2
fi
DEST=$1
for tool in git sox; do
  command -v "$tool" >/dev/null || { echo "fetch_extra_speech: $tool is needed (e.g. apt-get install $tool)" >&2; exit 2; }
done

# name | repository | audio folder in it | licence | corpus
CORPORA=(
  "speechocean762|${SPEECHOCEAN762_REPO:-https://github.com/jimbozhang/speechocean762.git}|WAVE|CC BY 4.0 (OpenSLR SLR101; free for commercial and non-commercial use)|speechocean762 (Zhang et al., Interspeech 2021)"
  "npvcc2016|${NPVCC2016_REPO:-https://github.com/tarepan/npVCC2016Corpus.git}|npVCC2016|CC BY 4.0|Voice Conversion Challenge 2016 (Toda et al., Interspeech 2016), npVCC2016 packaging"
  "picovoice-intent|${PICOVOICE_REPO:-https://github.com/Picovoice/speech-to-intent-benchmark.git}|data/speech/clean|Apache-2.0|Picovoice speech-to-intent benchmark, clean speech (silence trimmed)"
)

mkdir -p "$DEST"
DOWNLOAD="$DEST/.download"
trap 'rm -rf "$DOWNLOAD"' EXIT
sources=$(printf 'folder\tcorpus\tlicense\trepository\tcommit\taudio folder\n')

for entry in "${CORPORA[@]}"; do
  IFS='|' read -r name repository folder licence corpus <<<"$entry"
  clone="$DOWNLOAD/$name"
  rm -rf "$clone"
  echo "fetching $name from $repository ($folder/)" >&2
  GIT_LFS_SKIP_SMUDGE=1 git clone --quiet --depth 1 --filter=blob:none --sparse "$repository" "$clone"
  git -C "$clone" sparse-checkout set "$folder"
  [ -d "$clone/$folder" ] || { echo "fetch_extra_speech: $repository has no folder $folder" >&2; exit 1; }
  # Audio stored in git LFS arrives as small pointer files: fetch the real files for this folder only.
  if grep -rlq --include='*.[wW][aA][vV]' '^version https://git-lfs' "$clone/$folder"; then
    git -C "$clone" lfs version >/dev/null 2>&1 || {
      echo "fetch_extra_speech: $repository keeps its audio in git LFS; install git-lfs and run this again" >&2; exit 2; }
    git -C "$clone" lfs pull --include "$folder/**"
  fi
  staging="$DEST/$name.partial"
  rm -rf "$staging"
  mkdir -p "$staging"
  cp -R "$clone/$folder/." "$staging/"
  find "$staging" -name '.DS_Store' -delete
  if [ "$name" = picovoice-intent ]; then  # crowd-sourced requests with long pauses around them
    find "$staging" -iname '*.wav' -print0 | while IFS= read -r -d '' file; do
      sox "$file" "$file.trimmed.wav" silence 1 0.1 1% reverse silence 1 0.1 1% reverse && mv "$file.trimmed.wav" "$file"
    done
  fi
  rm -rf "${DEST:?}/$name"
  mv "$staging" "$DEST/$name"
  commit=$(git -C "$clone" rev-parse HEAD)
  sources+=$(printf '\n%s\t%s\t%s\t%s\t%s\t%s/' "$name" "$corpus" "$licence" "$repository" "$commit" "$folder")
  rm -rf "$clone"
  echo "$name: $(find "$DEST/$name" -iname '*.wav' | wc -l) files in $DEST/$name" >&2
done
printf '%s\n' "$sources" >"$DEST/SOURCES.tsv"
