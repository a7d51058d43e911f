#!/usr/bin/env bash
# git under vmrun on a bigger history: 300 generated commits (fixed dates, so
# hashes are deterministic), log --stat, blame (with -C -M), diff --stat across
# 100 commits, gc --aggressive, fsck --strict.  ~1,500 processes run under vmrt.
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
need git sed seq sha256sum
write_workflow <<'SH'
set -e
export GIT_AUTHOR_NAME=qa GIT_AUTHOR_EMAIL=qa@example.org GIT_COMMITTER_NAME=qa GIT_COMMITTER_EMAIL=qa@example.org
export GIT_CONFIG_NOSYSTEM=1 HOME=$PWD
git config --global init.defaultBranch main
git config --global gc.auto 0
git init -q repo; cd repo
for f in $(seq 1 20); do seq 1 200 | sed "s/^/f$f line /" > f$f.txt; done
git add .; GIT_AUTHOR_DATE="@1700000000 +0000" GIT_COMMITTER_DATE="@1700000000 +0000" git commit -q -m init
for c in $(seq 1 300); do
  f=$(( (c * 7) % 20 + 1 )); l=$(( (c * 13) % 200 + 1 ))
  sed -i "${l}s/\$/ c$c/" f$f.txt
  if [ $((c % 25)) -eq 0 ]; then seq $c $((c + 50)) > new$c.txt; git add new$c.txt; fi
  d="@$((1700000000 + c * 60)) +0000"
  GIT_AUTHOR_DATE="$d" GIT_COMMITTER_DATE="$d" git commit -q -am "commit $c: f$f line $l"
done
git log --stat | sha256sum
git log --oneline | wc -l
git blame f3.txt | sha256sum
git blame -C -M f7.txt | tail -3
git diff HEAD~100 HEAD --stat | tail -1
git gc -q --aggressive
git count-objects -v | grep -E '^(count|in-pack|packs)'
git fsck --full --strict 2>&1
git rev-parse HEAD
SH
compare_workflow
