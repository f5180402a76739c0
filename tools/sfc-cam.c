/* SPDX-License-Identifier: MIT */
/* sfc-cam: multi-scale CAMs of a trained SFC network (sfc-reference.md
 * §3): per scale the image (PIL bicubic) and its flip through the network,
 * M_W and M_P resized to the image and summed over scales, max-normalised
 * per channel, background + 0.4 and foreground x 2, the present classes
 * kept. Writes cam/<id>.npz with keys (int64), cam_w, cam_p and cam_c
 * (the classifier CAM before PCM, fused the same way) as float32 [K, H, W]
 * or, with --cam-dtype f16, float16 (lib/camfile.h); skips finished
 * images; --shard. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "camfile.h"
#include "db.h"
#include "ids.h"
#include "img.h"
#include "npy.h"
#include "ops.h"
#include "resample.h"
#include "safetensors.h"
#include "sfc.h"
#include "sfcnet.h"

#define BG_OFFSET 0.4f /* §3 fusion step 3 */
#define FG_SCALE 2.0f

static const char *const usage[] = {
    "sfc-cam --db FILE --ckpt FILE --out DIR [options] [ID...]",
    "   (ids from --split, --list, the arguments, or stdin)",
    NULL,
};

struct cmdline {
    const char *db, *ckpt, *out, *split, *list, *scales, *dtype;
    struct sfc_shard shard;
    int compress, cam_c, quiet;
};

static int parse_scales(const char *s, double *v, int max)
{
    int n = 0;
    while (*s && n < max) {
        char *end;
        double x = strtod(s, &end);
        if (end == s || !(x > 0 && x <= 8)) return -1;
        v[n++] = x;
        s = end;
        if (*s == ',') s++;
        else if (*s) return -1;
    }
    return *s ? -1 : n;
}

/* x (3, H, W) normalised image -> xx (2, 3, H, W): the image, its flip. */
static void with_flip(float *xx, const float *x, int H, int W)
{
    size_t n = (size_t)3 * H * W;
    memcpy(xx, x, sizeof(float) * n);
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < H; y++) {
            const float *r = x + ((size_t)c * H + y) * W;
            float *o = xx + n + ((size_t)c * H + y) * W;
            for (int i = 0; i < W; i++) o[i] = r[W - 1 - i];
        }
}

/* The CAMs of one image into cam_w, cam_p (nk, H, W) for the keys. */
static void image_cams(struct sfc_sfcnet *net, const uint8_t *rgb, int H,
                       int W, const int64_t *keys, int nk, const double *sc,
                       int nsc, float *cam_w, float *cam_p, float *cam_c)
{
    int K = net->cfg.C + 1;
    size_t HW = (size_t)H * W;
    float *y21 = sfc_xcalloc((size_t)K, sizeof(float));
    for (int k = 0; k < nk; k++) y21[keys[k]] = 1;
    float *sw = sfc_xcalloc((size_t)K * HW, sizeof(float));
    float *sp = sfc_xcalloc((size_t)K * HW, sizeof(float));
    float *sc_ = sfc_xcalloc((size_t)K * HW, sizeof(float));
    float *up = sfc_xmalloc(sizeof(float) * (size_t)K * HW);
    for (int i = 0; i < nsc; i++) {
        int Hs = sfc_rescale_size(H, sc[i]), Ws = sfc_rescale_size(W, sc[i]);
        uint8_t *im = (uint8_t *)rgb;
        if (sc[i] != 1.0) {
            im = sfc_xmalloc((size_t)Hs * Ws * 3);
            sfc_resize_bicubic_u8(im, Hs, Ws, rgb, H, W, 3);
        } else {
            Hs = H;
            Ws = W;
        }
        float *x = sfc_xmalloc(sizeof(float) * 3 * (size_t)Hs * Ws);
        float *xx = sfc_xmalloc(sizeof(float) * 6 * (size_t)Hs * Ws);
        sfc_normalize_image(x, im, Hs, Ws);
        with_flip(xx, x, Hs, Ws);
        int h, w;
        sfc_sfcnet_grid(net, Hs, Ws, &h, &w);
        float *mw = sfc_xmalloc(sizeof(float) * (size_t)K * h * w);
        float *mp = sfc_xmalloc(sizeof(float) * (size_t)K * h * w);
        float *mc = sfc_xmalloc(sizeof(float) * (size_t)K * h * w);
        sfc_sfcnet_cam(net, xx, Hs, Ws, y21, mw, mp, mc);
        sfc_resize_bilinear_forward(up, mw, 1, K, h, w, H, W, 0, 0, 0);
        for (size_t j = 0; j < K * HW; j++) sw[j] += up[j];
        sfc_resize_bilinear_forward(up, mp, 1, K, h, w, H, W, 0, 0, 0);
        for (size_t j = 0; j < K * HW; j++) sp[j] += up[j];
        sfc_resize_bilinear_forward(up, mc, 1, K, h, w, H, W, 0, 0, 0);
        for (size_t j = 0; j < K * HW; j++) sc_[j] += up[j];
        free(mw);
        free(mp);
        free(mc);
        free(x);
        free(xx);
        if (im != rgb) free(im);
    }
    /* max-normalise each channel, background + 0.4, foreground x 2 */
    float *maps[3] = {sw, sp, sc_}, *outs[3] = {cam_w, cam_p, cam_c};
    for (int m = 0; m < 3; m++)
        for (int k = 0; k < nk; k++) {
            const float *src = maps[m] + (size_t)keys[k] * HW;
            float mx = 0;
            for (size_t j = 0; j < HW; j++) mx = src[j] > mx ? src[j] : mx;
            float *dst = outs[m] + (size_t)k * HW;
            for (size_t j = 0; j < HW; j++) {
                float v = src[j] / (mx + 1e-5f);
                dst[j] = k == 0 ? v + BG_OFFSET : FG_SCALE * v;
            }
        }
    free(up);
    free(sw);
    free(sp);
    free(sc_);
    free(y21);
}

int main(int argc, char **argv)
{
    struct cmdline cl = {0};
    cl.scales = "1,0.5,1.5,2";
    cl.shard.n = 1;
    cl.compress = 1;
    cl.cam_c = 1;
    cl.dtype = "f32";
    static const char *const dtype_choices[] = {"f32", "f16", NULL};
    const struct sfc_opt opts[] = {
        SFC_OPT_STRING_("db", &cl.db, "FILE", "the run's db (images, labels)"),
        SFC_OPT_STRING_("ckpt", &cl.ckpt, "FILE",
                        "trained network (sfc-trainstep's final.safetensors)"),
        SFC_OPT_STRING_("out", &cl.out, "DIR", "output folder for <id>.npz"),
        SFC_OPT_STRING_("split", &cl.split, "NAME", "process a split's ids"),
        SFC_OPT_STRING_("list", &cl.list, "FILE", "process the ids in FILE"),
        SFC_OPT_STRING_("scales", &cl.scales, "S,S,...",
                        "input scales (PIL bicubic), each with its flip"),
        SFC_OPT_INT_("compress", &cl.compress, "0|1", 0, 1,
                     "deflate the .npz members (np.savez_compressed)"),
        SFC_OPT_INT_("cam-c", &cl.cam_c, "0|1", 0, 1,
                     "also store cam_c (for the plain-CAM baseline); 0 "
                     "saves a third of the disk (COCO)"),
        SFC_OPT_CHOICE_("cam-dtype", &cl.dtype, dtype_choices,
                        "storage of the maps: f32 (float32) or f16 "
                        "(float16, half the disk; rounded to nearest even)"),
        SFC_OPT_SHARD_(&cl.shard),
        SFC_OPT_FLAG_("quiet", 'q', &cl.quiet, "no progress on stderr"),
        SFC_OPT_END_,
    };
    const struct sfc_cli cli = {
        usage,
        "Compute M_W (the PCM-refined classifier CAM) and M_P (the prototype "
        "CAM) of each image at every scale with its flip, sum them over "
        "scales at full resolution, max-normalise each channel, add 0.4 to "
        "the background and double the foreground, and keep the background "
        "and the image's classes. Images whose output exists are skipped.",
        opts};
    sfc_proginit(argv[0]);
    int npos = sfc_cli_parse(&cli, argc, argv);
    if (!cl.db || !cl.ckpt || !cl.out)
        sfc_cli_die("--db, --ckpt and --out are required");
    double sc[16];
    int nsc = parse_scales(cl.scales, sc, 16);
    if (nsc < 1) sfc_cli_die("--scales: bad list '%s'", cl.scales);
    if ((cl.split != NULL) + (cl.list != NULL) + (npos > 0) > 1)
        sfc_cli_die("give ids by one of --split, --list or arguments");

    struct sfc_db *db = sfc_db_open(cl.db, 0);
    if (!db) sfc_die_errmsg();
    struct sfc_ids idl;
    if (sfc_ids_get(&idl, npos, argv, cl.list, db, cl.split))
        sfc_die_errmsg();
    char **ids = idl.v;
    long n = idl.n;

    struct sfc_safetensors st;
    struct sfc_sfcnet_config cfg;
    if (sfc_safetensors_read(cl.ckpt, &st) ||
        sfc_sfcnet_config_read(&cfg, &st, cl.ckpt))
        sfc_die_errmsg();
    sfc_safetensors_release(&st);
    struct sfc_sfcnet net;
    if (sfc_sfcnet_init(&net, &cfg) || sfc_sfcnet_load(&net, cl.ckpt, 0))
        sfc_die_errmsg();
    char **cnames;
    int ncls;
    if (sfc_db_class_names(db, &cnames, &ncls)) sfc_die_errmsg();
    sfc_db_strv_free(cnames, ncls);
    if (ncls - 1 != cfg.C)
        sfc_die("%s: the network has %d classes, the db '%s' has %d",
                cl.ckpt, cfg.C, cl.db, ncls - 1);
    if (sfc_mkdirs(cl.out, 0777)) sfc_die_errmsg();

    char *config = sfc_cli_config_json(&cli);
    int64_t run = sfc_db_run_begin(db, "sfc-cam", SFC_DB_NO_SEED, config);
    if (run < 0) sfc_die_errmsg();
    long todo = 0;
    for (long i = 0; i < n; i++) todo += sfc_shard_mine(&cl.shard, i);
    struct sfc_progress pr;
    sfc_progress_start(&pr, "cam", todo, cl.quiet);
    long done = 0, skipped = 0;
    for (long i = 0; i < n; i++) {
        if (!sfc_shard_mine(&cl.shard, i)) continue;
        char *name = sfc_xasprintf("%s.npz", ids[i]);
        char *path = sfc_path_join(cl.out, name);
        free(name);
        if (sfc_file_exists(path)) {
            skipped++;
        } else {
            struct sfc_db_image im;
            struct sfc_tensor rgb;
            if (sfc_db_image_get(db, ids[i], &im) ||
                sfc_image_load(im.path, &rgb))
                sfc_db_run_die(db, run);
            int H = (int)rgb.shape[0], W = (int)rgb.shape[1];
            int nk = 1 + im.nlabels;
            struct sfc_tensor keys, cw, cp, cc;
            sfc_tensor_init(&keys, SFC_I64, 1, (const int64_t[]){nk});
            sfc_tensor_f32(&cw, nk, H, W);
            sfc_tensor_f32(&cp, nk, H, W);
            sfc_tensor_f32(&cc, nk, H, W);
            int64_t *kv = keys.data;
            kv[0] = 0;
            for (int k = 0; k < im.nlabels; k++) kv[k + 1] = im.labels[k];
            image_cams(&net, rgb.data, H, W, kv, nk, sc, nsc, cw.data,
                       cp.data, cc.data);
            const char *names[] = {"cam_w", "cam_p", "cam_c"};
            const struct sfc_tensor *arr[] = {&cw, &cp, &cc};
            if (sfc_camfile_write(path, &keys, cl.cam_c ? 3 : 2, names, arr,
                                  strcmp(cl.dtype, "f16") ? SFC_F32 : SFC_F16,
                                  cl.compress))
                sfc_db_run_die(db, run);
            sfc_tensor_release(&keys);
            sfc_tensor_release(&cw);
            sfc_tensor_release(&cp);
            sfc_tensor_release(&cc);
            sfc_tensor_release(&rgb);
            sfc_db_image_release(&im);
        }
        free(path);
        sfc_progress_update(&pr, ++done);
    }
    sfc_progress_end(&pr);
    if (sfc_db_run_end(db, run, SFC_RUN_OK)) sfc_db_run_die(db, run);
    printf("cam\t%ld written\t%ld skipped\n", done - skipped, skipped);
    sfc_ids_release(&idl);
    free(config);
    sfc_sfcnet_release(&net);
    sfc_db_close(db);
    return sfc_fshut(stdout, "<stdout>");
}
