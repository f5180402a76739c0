# t0600: sfc-sample on a db whose class counts are VOC train_aug's
# (sfc-reference.md §1.2): the DC column must reproduce the table of §2.5
# to 4 decimals with N_ibr = 396; the schedule is deterministic; every bank
# row holds an image that has the class; bad input leaves the db unchanged.
# Needs: sqlite3.
. tests/cli/lib.sh

mkdb() {
    sqlite3 "$1" <db/schema.sql
    sqlite3 "$1" <<'SQL'
BEGIN;
INSERT INTO classes VALUES (0,'background'),(1,'aeroplane'),(2,'bicycle'),
 (3,'bird'),(4,'boat'),(5,'bottle'),(6,'bus'),(7,'car'),(8,'cat'),
 (9,'chair'),(10,'cow'),(11,'diningtable'),(12,'dog'),(13,'horse'),
 (14,'motorbike'),(15,'person'),(16,'pottedplant'),(17,'sheep'),(18,'sofa'),
 (19,'train'),(20,'tvmonitor');
CREATE TEMP TABLE n(c, k);
INSERT INTO n VALUES (1,590),(2,504),(3,705),(4,468),(5,714),(6,393),
 (7,1150),(8,1005),(9,1228),(10,267),(11,613),(12,1188),(13,445),(14,492),
 (15,4155),(16,522),(17,300),(18,649),(19,503),(20,567);
-- one single-label image per counted occurrence
WITH RECURSIVE i(c, j) AS (SELECT c, 1 FROM n UNION ALL
    SELECT i.c, j + 1 FROM i JOIN n ON n.c = i.c WHERE j < n.k)
INSERT INTO images SELECT printf('img_%02d_%04d', c, j), 300 + j % 200,
    250 + j % 250, 'none.jpg', NULL FROM i;
INSERT INTO image_labels SELECT id, CAST(substr(id, 5, 2) AS INTEGER)
    FROM images;
INSERT INTO image_splits SELECT 'train_aug', id, row_number() OVER
    (ORDER BY id) - 1 FROM images;
COMMIT;
SQL
}

mkdb "$T/a.db"
expect_ok sfc-sample --db "$T/a.db" --split train_aug --epochs 1 --batch 16 \
    --draws 4 --crop 512 --n-ibr 396 --seed 10 -q
cp "$T/.out" "$T/a.out"
check "run id printed" grep -q '^run	1$' "$T/a.out"
# §2.5 table, class order 1..20
cat >"$T/want" <<'EOF2'
0.8065
0.9025
0.7726
0.9809
0.7732
1.2084
0.8725
0.8318
0.9068
1.7694
0.7929
0.8870
1.0424
0.9259
1.5451
0.8765
1.5955
0.7801
0.9042
0.8257
EOF2
sqlite3 "$T/a.db" "SELECT printf('%.4f', dc) FROM class_stats WHERE run = 1
    ORDER BY class" >"$T/got"
same_bytes "$T/got" "$T/want"
check "person is head" test "$(sqlite3 "$T/a.db" \
    "SELECT grp FROM class_stats WHERE run = 1 AND class = 15")" = head
check "cow is tail" test "$(sqlite3 "$T/a.db" \
    "SELECT grp FROM class_stats WHERE run = 1 AND class = 10")" = tail
steps=$(sqlite3 "$T/a.db" "SELECT count(DISTINCT step) FROM schedule")
check "16458 // 16 steps ($steps)" test "$steps" = 1028
check "20 slots per step" test "$(sqlite3 "$T/a.db" \
    "SELECT count(*) FROM schedule")" = $((1028 * 20))
check "every bank row's image has its class" test "$(sqlite3 "$T/a.db" \
    "SELECT count(*) FROM image_bank b WHERE image IS NOT NULL AND NOT EXISTS
     (SELECT 1 FROM image_labels l WHERE l.image = b.image
      AND l.class = b.class)")" = 0
check "draws copy the bank of their step" test "$(sqlite3 "$T/a.db" \
    "SELECT count(*) FROM schedule s JOIN image_bank b ON b.run = s.run
     AND b.step = s.step AND b.class = s.bank_class
     WHERE s.source = 'bank' AND (s.image IS NOT b.image
     OR s.dst_y != b.dst_y OR s.dst_x != b.dst_x)")" = 0
check "the canvas holds every window" test "$(sqlite3 "$T/a.db" \
    "SELECT count(*) FROM schedule WHERE image IS NOT NULL AND
     (dst_y + crop_h > 512 OR dst_x + crop_w > 512)")" = 0

# determinism: same seed, same rows; another seed, other rows
mkdb "$T/b.db"
expect_ok sfc-sample --db "$T/b.db" --split train_aug --epochs 1 --batch 16 \
    --draws 4 --crop 512 --n-ibr 396 --seed 10 -q
q="SELECT * FROM schedule ORDER BY step, slot"
sqlite3 "$T/a.db" "$q" >"$T/sa"
sqlite3 "$T/b.db" "$q" >"$T/sb"
same_bytes "$T/sa" "$T/sb"
expect_ok sfc-sample --db "$T/b.db" --split train_aug --epochs 1 --batch 16 \
    --draws 4 --crop 512 --seed 11 --aug irn -q
sqlite3 "$T/b.db" "SELECT * FROM schedule WHERE run = 2 ORDER BY step, slot" \
    | cut -d'|' -f2- >"$T/sc"
cut -d'|' -f2- "$T/sa" >"$T/sa2"
check "another seed gives another schedule" sh -c "! cmp -s '$T/sa2' '$T/sc'"
check "irn augmentation flips" test "$(sqlite3 "$T/b.db" \
    "SELECT count(*) > 0 FROM schedule WHERE run = 2 AND flip = 1")" = 1

# errors: one line, exit 1, db unchanged
sqlite3 "$T/a.db" .dump >"$T/before"
expect_fail 1 sfc-sample --db "$T/a.db" --split nosuch -q
stderr_has "nosuch"
expect_fail 1 sfc-sample --db "$T/a.db" --split train_aug --batch 20000 -q
sqlite3 "$T/a.db" .dump >"$T/after"
same_bytes "$T/before" "$T/after"
expect_fail 1 sfc-sample --db "$T/missing.db" -q
check "no db created" test ! -e "$T/missing.db"
expect_fail 2 sfc-sample --db "$T/a.db" --batch 0
expect_fail 2 sfc-sample --db "$T/a.db" --aug other
expect_fail 2 sfc-sample
finish
