-- SPDX-License-Identifier: MIT
-- db/schema.sql: the one source of truth for sfc's SQLite schema.
--
-- lib/db.c embeds this file at build time and runs it when it creates a
-- new database; `sqlite3 sfc.db .schema` shows it with its comments (SQLite
-- keeps the text of each CREATE statement, comments inside the
-- parentheses included). Connections run with foreign keys on, WAL
-- journal and a busy timeout; every multi-row change is one transaction.
--
-- Conventions: class ids are the pixel values of label PNGs (0 =
-- background, 1..C foreground, 255 = ignore, never stored); image ids are
-- VOC-style file stems; times are UTC ISO 8601 text; a `run` column names
-- the runs row of the tool invocation that wrote the row.
--
-- Changing the schema: edit this file and bump the user_version at the
-- end together with SFC_DB_SCHEMA_VERSION in lib/db.h. Opening a db whose
-- version differs is an error.

CREATE TABLE classes ( -- the label set of the dataset: one row per class id
    id   INTEGER PRIMARY KEY CHECK (id BETWEEN 0 AND 254), -- pixel value in label PNGs: 0 = background, 1..C = foreground classes
    name TEXT NOT NULL UNIQUE CHECK (name <> '')           -- e.g. 'aeroplane'; id 0 is 'background'
);

CREATE TABLE images ( -- every image of the dataset, whatever its splits
    id     TEXT PRIMARY KEY,                 -- file stem, e.g. '2007_000032'
    width  INTEGER NOT NULL CHECK (width > 0),  -- pixels, read from the image header
    height INTEGER NOT NULL CHECK (height > 0), -- pixels
    path   TEXT NOT NULL,                    -- the image file (absolute path when written by sfc-ingest)
    mask   TEXT                              -- its ground-truth label PNG (same size), NULL when the dataset has none
);

CREATE TABLE image_splits ( -- which images a split (a VOC list file) holds, in list order
    split TEXT NOT NULL,                     -- list name: the list file's stem, e.g. 'train', 'train_aug', 'val'
    image TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE, -- the image
    pos   INTEGER NOT NULL CHECK (pos >= 0), -- 0-based line number in the list (ids are read back in this order)
    PRIMARY KEY (split, image),
    UNIQUE (split, pos)
) WITHOUT ROWID;

CREATE TABLE image_labels ( -- image-level labels: the foreground classes present in each image
    image TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE, -- the image
    class INTEGER NOT NULL REFERENCES classes(id) CHECK (class > 0), -- a class present in it (background is never listed)
    PRIMARY KEY (image, class)
) WITHOUT ROWID;

CREATE TABLE runs ( -- one row per tool invocation that wrote to this db
    id      INTEGER PRIMARY KEY,             -- run id, referenced by every per-run table
    tool    TEXT NOT NULL,                   -- program name, e.g. 'sfc-sample'
    version TEXT NOT NULL,                   -- sfc version of the tool (SFC_VERSION)
    seed    INTEGER,                         -- the run's seed; NULL when the tool draws no random numbers
    config  TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(config)), -- every option's value, as a JSON object
    started TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')), -- start time, UTC
    ended   TEXT,                            -- end time, UTC; NULL while running (or if killed)
    status  TEXT NOT NULL DEFAULT 'running'
            CHECK (status IN ('running', 'ok', 'failed')), -- 'running' until the tool ends; a killed run stays 'running'
    pid     INTEGER                          -- process id while it ran (tells a live run from a killed one)
);

CREATE TABLE class_stats ( -- per-class statistics of a split: N_c, DC_c and the head/middle/tail group (sfc-reference 1.2, 2.5)
    run      INTEGER REFERENCES runs(id) ON DELETE CASCADE, -- NULL: the dataset's own counts (written by sfc-ingest); else the run that computed them (sfc-sample)
    split    TEXT NOT NULL,                  -- the split counted, e.g. 'train_aug'
    class    INTEGER NOT NULL REFERENCES classes(id) CHECK (class > 0), -- foreground class
    n_images INTEGER NOT NULL CHECK (n_images >= 0), -- N_c: images of the split whose labels contain the class
    dc       REAL,                           -- DC_c = r_c / mean_k r_k, r_c = sum_k |N_c - N_k| / (N_c + N_ibr); NULL if not computed
    grp      TEXT CHECK (grp IN ('head', 'middle', 'tail')) -- by rank of N_c (descending, ties by id): first third head, second middle, rest tail
);
CREATE UNIQUE INDEX class_stats_key ON class_stats (ifnull(run, 0), split, class);

CREATE TABLE schedule ( -- the training schedule: what fills each batch slot at each step (sfc-sample; sfc-reference 2.1, 2.3)
    run        INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, -- the sampling run
    step       INTEGER NOT NULL CHECK (step >= 0), -- global training step t = 0..max_step-1
    slot       INTEGER NOT NULL CHECK (slot >= 0), -- position in the batch: loaded images first, then the bank draws
    epoch      INTEGER NOT NULL CHECK (epoch >= 0), -- 0-based epoch of the step
    source     TEXT NOT NULL CHECK (source IN ('batch', 'bank')), -- 'batch': loaded from the split; 'bank': an IBR draw
    image      TEXT REFERENCES images(id),   -- the image; NULL for a draw from a still-empty bank entry (zero image, all-zero label)
    bank_class INTEGER REFERENCES classes(id), -- bank rows: the class k drawn (1..C); NULL for batch rows
    scale      REAL NOT NULL DEFAULT 1,      -- resize factor applied to the image first (1 = none)
    flip       INTEGER NOT NULL DEFAULT 0 CHECK (flip IN (0, 1)), -- 1: horizontal flip after the resize
    src_y      INTEGER NOT NULL DEFAULT 0,   -- top row of the window taken from the (resized, flipped) image
    src_x      INTEGER NOT NULL DEFAULT 0,   -- left column of that window
    dst_y      INTEGER NOT NULL DEFAULT 0,   -- top row where the window is pasted in the zero canvas
    dst_x      INTEGER NOT NULL DEFAULT 0,   -- left column where it is pasted
    crop_h     INTEGER NOT NULL DEFAULT 0 CHECK (crop_h >= 0), -- window height (the valid-mask box is dst_y..dst_y+crop_h)
    crop_w     INTEGER NOT NULL DEFAULT 0 CHECK (crop_w >= 0), -- window width
    PRIMARY KEY (run, step, slot)
) WITHOUT ROWID;

CREATE TABLE image_bank ( -- IBR bank state: the image each class slot holds after the bank update of a step, before the draws (sfc-reference 2.3)
    run    INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, -- the sampling run
    step   INTEGER NOT NULL CHECK (step >= 0), -- global training step
    class  INTEGER NOT NULL REFERENCES classes(id) CHECK (class > 0), -- the bank slot (one per foreground class)
    image  TEXT REFERENCES images(id),       -- the latest training image containing the class; NULL while the slot is empty
    scale  REAL NOT NULL DEFAULT 1,          -- augmentation of the held copy, as in schedule
    flip   INTEGER NOT NULL DEFAULT 0 CHECK (flip IN (0, 1)), -- as in schedule
    src_y  INTEGER NOT NULL DEFAULT 0,       -- crop window and placement of the held copy, as in schedule
    src_x  INTEGER NOT NULL DEFAULT 0,       -- as in schedule
    dst_y  INTEGER NOT NULL DEFAULT 0,       -- as in schedule
    dst_x  INTEGER NOT NULL DEFAULT 0,       -- as in schedule
    crop_h INTEGER NOT NULL DEFAULT 0,       -- as in schedule (its box is the stored valid mask)
    crop_w INTEGER NOT NULL DEFAULT 0,       -- as in schedule
    labels TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(labels)), -- the held image's full label (sltarget): JSON array of class ids, '[]' when empty
    PRIMARY KEY (run, step, class)
) WITHOUT ROWID;

CREATE TABLE train_log ( -- one row per training step of a trainer (sfc-trainstep, sfc-irn, sfc-segtrain)
    run          INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, -- the training run
    step         INTEGER NOT NULL CHECK (step >= 0), -- global step t
    epoch        INTEGER,                    -- 0-based epoch
    loss         REAL NOT NULL,              -- total loss minimised at this step
    loss_cls     REAL,                       -- SFC: L_cls, mean of the two scales' BCE (2.5.1); NULL for other trainers
    loss_pdw     REAL,                       -- SFC: 1.6 * L_PDW (2.5.2)
    loss_wdw     REAL,                       -- SFC: 0.8 * L_WDW (2.5.3)
    loss_pos     REAL,                       -- IRN: Lpos (6.3)
    loss_neg     REAL,                       -- IRN: Lneg (6.3)
    grad_norm    REAL,                       -- global L2 norm of the gradient before clipping
    lr           REAL NOT NULL,              -- learning rate of the first parameter group at this step (poly schedule)
    images_per_s REAL,                       -- throughput of this step
    seconds      REAL,                       -- wall time of this step
    PRIMARY KEY (run, step)
) WITHOUT ROWID;

CREATE TABLE metrics ( -- evaluation results: per-class rows and summary rows (sfc-miou, validation; sfc-reference 4, 8)
    run   INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, -- the evaluating run
    stage TEXT NOT NULL,                     -- what was evaluated: 'cam', 'ir_label', 'pseudo', 'seg', ...
    map   TEXT NOT NULL DEFAULT '',          -- which map of the stage: 'M_W', 'M_P', 'M_W+M_P', ...; '' when it has one
    split TEXT NOT NULL DEFAULT '',          -- the split (image list) evaluated
    step  INTEGER NOT NULL DEFAULT -1,       -- training step of an in-training validation; -1 otherwise
    class INTEGER REFERENCES classes(id),    -- the class of a per-class row; NULL on summary rows
    name  TEXT NOT NULL,                     -- per class: 'iou', 'precision', 'recall', 'tp', 'fp', 'fn'; summary: 'miou', 'head', 'middle', 'tail' (mean IoU of a group), 'fg_miou', 'threshold'
    value REAL,                              -- the value (IoU etc. as fractions in [0, 1], counts in pixels); NULL when undefined (0/0)
    CHECK ((class IS NULL) = (name NOT IN ('iou', 'precision', 'recall', 'tp', 'fp', 'fn')))
);
CREATE UNIQUE INDEX metrics_key ON metrics (run, stage, map, split, step, ifnull(class, -1), name);

PRAGMA user_version = 1;
