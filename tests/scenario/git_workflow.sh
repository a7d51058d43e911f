#!/usr/bin/env bash
# git under vmrun: init, add and commit several files, branch, merge, log with a
# fixed author/date (deterministic hashes), gc.  Every git child runs under vmrt.
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
need git

write_workflow <<'SH'
set -e
export GIT_AUTHOR_NAME=vmrt GIT_AUTHOR_EMAIL=vmrt@example.org GIT_COMMITTER_NAME=vmrt GIT_COMMITTER_EMAIL=vmrt@example.org
export GIT_AUTHOR_DATE="2024-01-01T00:00:00Z" GIT_COMMITTER_DATE="2024-01-01T00:00:00Z"
export GIT_CONFIG_NOSYSTEM=1 HOME=$PWD
git config --global init.defaultBranch main
git config --global gc.auto 0
git init -q repo
cd repo
for i in $(seq 1 30); do seq $i $((i * 40)) > file$i.txt; done
git add .
git commit -q -m "initial: 30 files"
git checkout -q -b feature
for i in $(seq 1 10); do echo "feature line $i" >> file$i.txt; done
git mv file30.txt moved.txt
git commit -q -am "feature: edit 10 files, move one"
git checkout -q main
for i in $(seq 20 25); do echo "main line $i" >> file$i.txt; done
git commit -q -am "main: edit 6 files"
git merge -q --no-edit feature
git log --oneline --graph
git diff --stat HEAD~1 HEAD
git gc -q
git count-objects -v | grep -E '^(count|in-pack|packs)'
git fsck --full 2>&1
git cat-file -p HEAD | head -3
SH
compare_workflow
