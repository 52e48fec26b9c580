/* The arithmetic bound of the culture's closed loop: a minimal C loop that replays a recorded
 * spike train of the culture with the same arithmetic as the model (dishbrain/culture model
 * equations), with none of a simulator's generality.
 *
 *     bound INPUT_DIR        (written by benchmarks/bound.py; prints "loop_s ..." and a checksum)
 *
 * Every time step, as Brian2's schedule does (start, groups, thresholds, synapses, resets, end):
 *   - noise: every noise interval each neuron draws I_noise = mean + sigma * hash_normal(key,
 *     i, step), the model's SplitMix64 hash and its Irwin-Hall normal;
 *   - stimulation commands (recorded from the closed loop) applied at their tick;
 *   - neuron update: the model's two half steps of v with the AMPA/NMDA(Mg block)/GABA_A
 *     conductances, the floor, u, and the three conductance decays, for every neuron;
 *   - threshold: every neuron's v is compared with 30 mV (the spikes themselves come from the
 *     recording, so the work per spike is the culture's own, not a diverging replica's);
 *     electrodes: the pulse condition of each electrode;
 *   - synaptic events after their axonal delays (delay rounded to steps as Brian2 does): E->E
 *     synapses with the event-driven presynaptic trace (exp of its age), the STP efficacy of the
 *     presynaptic neuron, AMPA + NMDA increments and the STDP depression (exp of the
 *     postsynaptic trace's age); static synapses with the depressing / facilitating efficacy or
 *     the GABA_A increment; the STDP potentiation of every E->E input of each spiking neuron
 *     (exp of its trace's age); each pulse's kick on the neurons its electrode reaches;
 *   - reset of each spiking neuron: v, u, the depressing and facilitating STP states, the STDP
 *     trace and the rate estimate advanced to the spike in closed form (5 exp), spike count;
 *     each pulsing electrode's next pulse (the benchmark's trains are periodic);
 *   - homeostatic scaling of every E->E weight every homeostasis interval.
 * Exponentials are libm exp() where the equations evaluate one per spike, as written; the three
 * per synaptic event (the two STDP traces' ages) come from a table on the time grid, as in our
 * compiled backend (dishbrain/culture/decay.py: exp(-k dt / tau), libm beyond 4096 steps).
 * What makes it minimal: a spike is one entry in a ring of the last max-delay steps and each
 * neuron's outgoing synapses are stored grouped by delay (no per-synapse queue push); values
 * that are constant per event are hoisted (the presynaptic efficacy, the sign of the synapse,
 * the homeostatic factor per postsynaptic neuron); no bookkeeping for saving, monitors or ticks.
 * Units: mV and ms (the model's SI arithmetic scaled; the same operations).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char* g_dir;

static void* load(const char* name, size_t elem, long long* count) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    FILE* f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "bound: cannot open %s\n", path); exit(2); }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    void* buf = malloc(size > 0 ? (size_t)size : 1);
    if (size > 0 && fread(buf, 1, (size_t)size, f) != (size_t)size) {
        fprintf(stderr, "bound: short read %s\n", path); exit(2);
    }
    fclose(f);
    if (count) *count = size / (long long)elem;
    return buf;
}

static double meta(const char* key) {
    char path[4096], k[128];
    double v;
    snprintf(path, sizeof path, "%s/meta.txt", g_dir);
    FILE* f = fopen(path, "r");
    if (!f) { fprintf(stderr, "bound: cannot open %s\n", path); exit(2); }
    while (fscanf(f, "%127s %lf", k, &v) == 2) {
        if (strcmp(k, key) == 0) { fclose(f); return v; }
    }
    fprintf(stderr, "bound: meta.txt lacks %s\n", key);
    exit(2);
}

static inline uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static inline uint64_t hash64(int64_t key, int64_t index, int64_t step) {
    uint64_t z = mix64((uint64_t)key * 0x9E3779B97F4A7C15ULL + (uint64_t)step);
    return mix64(z + (uint64_t)index * 0xD1B54A32D192ED03ULL);
}

static inline double hash_normal(int64_t key, int64_t index, int64_t step) {
    uint64_t z = hash64(key, index, step);
    double s = (double)((z & 0xFFFFULL) + ((z >> 16) & 0xFFFFULL) + ((z >> 32) & 0xFFFFULL)
                        + (z >> 48)) + 2.0;
    return (s / 65536.0 - 2.0) * 1.7320508075688772;
}

#define DECAY_N 4096
static void decay_fill(double* table, double dt, double tau) {
    for (int k = 0; k < DECAY_N; k++) table[k] = exp(-(k * dt) / tau);
}
static inline double decay(const double* table, double inv_dt, double tau, double elapsed) {
    const double x = elapsed * inv_dt + 0.5;
    if (x >= 0.0 && x < DECAY_N) return table[(int)x];
    return exp(-elapsed / tau);
}

static inline double clip(double x, double lo, double hi) {
    return x < lo ? lo : (x > hi ? hi : x);
}

int main(int argc, char** argv) {
    if (argc != 2) { fprintf(stderr, "usage: bound INPUT_DIR\n"); return 2; }
    g_dir = argv[1];
    const int n = (int)meta("n");
    const int n_exc = (int)meta("n_exc");
    const double dt = meta("dt_ms");
    const long long step0 = (long long)meta("step0"), step1 = (long long)meta("step1");
    const int noise_steps = (int)meta("noise_steps"), homeo_steps = (int)meta("homeo_steps");
    const int tick_steps = (int)meta("tick_steps");
    const int64_t noise_key = (int64_t)meta("noise_key");
    const double tau_exc = meta("tau_exc"), tau_inh = meta("tau_inh"), tau_nmda = meta("tau_nmda");
    const double nmda = meta("nmda_ratio"), E_exc = meta("E_exc"), E_inh = meta("E_inh");
    const double v_floor = meta("v_floor"), v_ceiling = meta("v_ceiling");
    const double stp_on = meta("stp_on"), U_dep = meta("U_dep"), tau_rec_dep = meta("tau_rec_dep");
    const double U_fac = meta("U_fac"), tau_rec_fac = meta("tau_rec_fac");
    const double tau_facil = meta("tau_facil_fac");
    const double tau_plus = meta("tau_plus"), tau_minus = meta("tau_minus");
    const double A_plus = meta("A_plus"), A_minus = meta("A_minus");
    const double w_min = meta("w_min"), w_max = meta("w_max");
    const double tau_homeo = meta("tau_homeo"), homeo_target = meta("homeo_target");
    const double homeo_rate = meta("homeo_rate"), homeo_on = meta("homeo_on");
    const double stim_gain = meta("stim_gain"), rate_init = meta("rate_init");
    const int n_el = (int)meta("n_electrodes");

    double* a = load("a.f64", 8, NULL);
    double* b = load("b.f64", 8, NULL);
    double* c = load("c.f64", 8, NULL);
    double* d = load("d.f64", 8, NULL);
    double* noise_mean = load("noise_mean.f64", 8, NULL);
    double* noise_sigma = load("noise_sigma.f64", 8, NULL);
    double* facil = load("facil.f64", 8, NULL);
    double* v = load("v0.f64", 8, NULL);
    long long m;
    int32_t* pre = load("pre.i32", 4, &m);
    int32_t* post = load("post.i32", 4, NULL);
    double* w0 = load("w.f64", 8, NULL);
    int32_t* delay = load("delay_steps.i32", 4, NULL);
    long long n_spk;
    int64_t* spk_step = load("spike_step.i64", 8, &n_spk);
    int32_t* spk_neuron = load("spike_neuron.i32", 4, NULL);
    long long n_cmd;
    int64_t* cmd_step = load("cmd_step.i64", 8, &n_cmd);
    int32_t* cmd_el = load("cmd_electrode.i32", 4, NULL);
    int32_t* cmd_kind = load("cmd_kind.i32", 4, NULL);   /* 0 stimulate, 1 stop */
    double* cmd_amp = load("cmd_amplitude.f64", 8, NULL);
    double* cmd_rate = load("cmd_rate.f64", 8, NULL);
    double* cmd_dur = load("cmd_duration.f64", 8, NULL);
    long long n_stim;
    int32_t* stim_row = load("stim_row.i32", 4, NULL);   /* CSR offsets, n_el + 1 */
    int32_t* stim_col = load("stim_col.i32", 4, &n_stim);
    double* stim_c = load("stim_coupling.f64", 8, NULL);

    /* Outgoing synapses per neuron grouped by delay: E->E and static apart. */
    int dmax = 0;
    for (long long k = 0; k < m; k++) if (delay[k] > dmax) dmax = delay[k];
    const int R = dmax + 1;
    long long* ee_off = calloc((size_t)n * R + 1, sizeof(long long));
    long long* st_off = calloc((size_t)n * R + 1, sizeof(long long));
    long long m_ee = 0;
    for (long long k = 0; k < m; k++) {
        int ee = pre[k] < n_exc && post[k] < n_exc;
        long long slot = (long long)pre[k] * R + delay[k] + 1;
        if (ee) { ee_off[slot]++; m_ee++; } else st_off[slot]++;
    }
    for (long long s = 0; s < (long long)n * R; s++) {
        ee_off[s + 1] += ee_off[s];
        st_off[s + 1] += st_off[s];
    }
    long long m_st = m - m_ee;
    int32_t* ee_post = malloc(sizeof(int32_t) * (m_ee + 1));
    double* ee_w = malloc(sizeof(double) * (m_ee + 1));
    double* ee_apre = calloc(m_ee + 1, sizeof(double));
    double* ee_last = calloc(m_ee + 1, sizeof(double));
    int32_t* st_post = malloc(sizeof(int32_t) * (m_st + 1));
    double* st_w = malloc(sizeof(double) * (m_st + 1));
    {
        long long* fe = malloc(sizeof(long long) * ((size_t)n * R));
        long long* fs = malloc(sizeof(long long) * ((size_t)n * R));
        memcpy(fe, ee_off, sizeof(long long) * (size_t)n * R);
        memcpy(fs, st_off, sizeof(long long) * (size_t)n * R);
        for (long long k = 0; k < m; k++) {
            long long slot = (long long)pre[k] * R + delay[k];
            if (pre[k] < n_exc && post[k] < n_exc) {
                long long q = fe[slot]++;
                ee_post[q] = post[k]; ee_w[q] = w0[k];
            } else {
                long long q = fs[slot]++;
                st_post[q] = post[k]; st_w[q] = w0[k];
            }
        }
        free(fe); free(fs);
    }
    /* Incoming E->E synapses per neuron (for the STDP potentiation when it fires). */
    long long* in_off = calloc((size_t)n + 1, sizeof(long long));
    for (long long q = 0; q < m_ee; q++) in_off[ee_post[q] + 1]++;
    for (int i = 0; i < n; i++) in_off[i + 1] += in_off[i];
    long long* in_syn = malloc(sizeof(long long) * (m_ee + 1));
    {
        long long* fill = malloc(sizeof(long long) * ((size_t)n + 1));
        memcpy(fill, in_off, sizeof(long long) * ((size_t)n + 1));
        for (long long q = 0; q < m_ee; q++) in_syn[fill[ee_post[q]]++] = q;
        free(fill);
    }

    double* u = malloc(sizeof(double) * n);
    double* ge = calloc(n, sizeof(double));
    double* gn = calloc(n, sizeof(double));
    double* gi = calloc(n, sizeof(double));
    double* I_noise = calloc(n, sizeof(double));
    double* x_dep = malloc(sizeof(double) * n);
    double* eff_dep = malloc(sizeof(double) * n);
    double* u_fac = calloc(n, sizeof(double));
    double* x_fac = malloc(sizeof(double) * n);
    double* eff_fac = malloc(sizeof(double) * n);
    double* apost = calloc(n, sizeof(double));
    double* rate_est = malloc(sizeof(double) * n);
    double* t_last = calloc(n, sizeof(double));
    double* homeo_f = malloc(sizeof(double) * n);
    int64_t* n_spikes = calloc(n, sizeof(int64_t));
    for (int i = 0; i < n; i++) {
        u[i] = b[i] * v[i];
        x_dep[i] = eff_dep[i] = x_fac[i] = eff_fac[i] = 1.0;
        rate_est[i] = rate_init;
    }
    double* el_amp = calloc(n_el, sizeof(double));
    double* el_rate = malloc(sizeof(double) * n_el);
    double* el_end = calloc(n_el, sizeof(double));
    double* el_next = calloc(n_el, sizeof(double));
    for (int e = 0; e < n_el; e++) el_rate[e] = 1e-3;   /* 1 Hz, per ms */
    int* pulsing = malloc(sizeof(int) * n_el);

    /* Ring of the spikes of the last R steps. */
    int32_t* ring = malloc(sizeof(int32_t) * (size_t)R * n);
    int* ring_n = calloc(R, sizeof(int));

    static double tab_plus[DECAY_N], tab_minus[DECAY_N];
    decay_fill(tab_plus, dt, tau_plus);
    decay_fill(tab_minus, dt, tau_minus);
    const double inv_dt = 1.0 / dt;
    const double dec_e = exp(-dt / tau_exc), dec_n = exp(-dt / tau_nmda);
    const double dec_i = exp(-dt / tau_inh), half = 0.5 * dt;
    long long p_spk = 0, p_cmd = 0;
    while (p_spk < n_spk && spk_step[p_spk] < step0) p_spk++;
    while (p_cmd < n_cmd && cmd_step[p_cmd] < step0) p_cmd++;
    long long events = 0, spikes = 0, pulses = 0;

    struct timespec ts0, ts1, cs0, cs1;
    clock_gettime(CLOCK_MONOTONIC, &ts0);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cs0);
    for (long long s = step0; s < step1; s++) {
        const double t = (double)s * dt;
        /* start: noise, then the tick's stimulation commands */
        if (s % noise_steps == 0) {
            for (int i = 0; i < n; i++)
                I_noise[i] = noise_mean[i] + noise_sigma[i] * hash_normal(noise_key, i, s / noise_steps);
        }
        if (s % tick_steps == 0) {
            while (p_cmd < n_cmd && cmd_step[p_cmd] == s) {
                int e = cmd_el[p_cmd];
                if (cmd_kind[p_cmd] == 0) {
                    el_amp[e] = cmd_amp[p_cmd];
                    el_rate[e] = cmd_rate[p_cmd] * 1e-3;
                    el_end[e] = t + cmd_dur[p_cmd];
                    el_next[e] = t;
                } else {
                    el_end[e] = t;
                }
                p_cmd++;
            }
        }
        /* groups: the neuron update */
        for (int i = 0; i < n; i++) {
            double vi = v[i], ui = u[i], gei = ge[i], gni = gn[i], gii = gi[i];
            double x = (vi + 80.0) * (1.0 / 60.0), mg = x * x;
            double I_syn = (gei + gni * mg / (1.0 + mg)) * (E_exc - vi) + gii * (E_inh - vi);
            double vh = vi + half * (0.04 * vi * vi + 5.0 * vi + 140.0 - ui + I_syn + I_noise[i]);
            double xh = (vh + 80.0) * (1.0 / 60.0), mgh = xh * xh;
            double I_h = (gei + gni * mgh / (1.0 + mgh)) * (E_exc - vh) + gii * (E_inh - vh);
            double vn = vh + half * (0.04 * vh * vh + 5.0 * vh + 140.0 - ui + I_h + I_noise[i]);
            vn = clip(vn, v_floor, v_ceiling);
            v[i] = vn;
            u[i] = ui + dt * a[i] * (b[i] * vn - ui);
            ge[i] = gei * dec_e;
            gn[i] = gni * dec_n;
            gi[i] = gii * dec_i;
        }
        /* thresholds: every neuron compared with 30 mV; the spikes are the recorded ones */
        for (int i = 0; i < n; i++) v[i] = v[i] >= 30.0 ? c[i] : v[i];
        const int slot = (int)(s % R);
        int ns = 0;
        while (p_spk < n_spk && spk_step[p_spk] == s) ring[(size_t)slot * n + ns++] = spk_neuron[p_spk++];
        ring_n[slot] = ns;
        int np = 0;
        for (int e = 0; e < n_el; e++)
            if (t >= el_next[e] - 0.25 * dt && t < el_end[e] - 0.25 * dt) pulsing[np++] = e;
        /* synapses: events whose delay ends now */
        for (int dd = 0; dd < R; dd++) {
            if (dd > s - step0) break;
            const int sl = (int)((s - dd) % R);
            const int32_t* list = ring + (size_t)sl * n;
            for (int k = 0; k < ring_n[sl]; k++) {
                const int j = list[k];
                const long long seg = (long long)j * R + dd;
                if (j < n_exc) {
                    const double e_dep = eff_dep[j], e_fac = eff_fac[j];
                    for (long long q = ee_off[seg]; q < ee_off[seg + 1]; q++) {
                        const int i = ee_post[q];
                        ee_apre[q] *= decay(tab_plus, inv_dt, tau_plus, t - ee_last[q]);
                        ee_last[q] = t;
                        const double g = ee_w[q] * e_dep;
                        ge[i] += g;
                        gn[i] += nmda * g;
                        ee_apre[q] += 1.0;
                        ee_w[q] = clip(ee_w[q] - A_minus * apost[i] * decay(tab_minus, inv_dt, tau_minus, t - t_last[i]),
                                       w_min, w_max);
                    }
                    for (long long q = st_off[seg]; q < st_off[seg + 1]; q++) {
                        const int i = st_post[q];
                        const double g = st_w[q] * (e_dep + facil[i] * (e_fac - e_dep));
                        ge[i] += g;
                        gn[i] += nmda * g;
                    }
                    events += ee_off[seg + 1] - ee_off[seg] + st_off[seg + 1] - st_off[seg];
                } else {
                    for (long long q = st_off[seg]; q < st_off[seg + 1]; q++) gi[st_post[q]] += st_w[q];
                    events += st_off[seg + 1] - st_off[seg];
                }
            }
        }
        /* the postsynaptic pathway: STDP potentiation of the E->E inputs of each spiking neuron */
        for (int k = 0; k < ns; k++) {
            const int i = ring[(size_t)slot * n + k];
            for (long long r = in_off[i]; r < in_off[i + 1]; r++) {
                const long long q = in_syn[r];
                ee_apre[q] *= decay(tab_plus, inv_dt, tau_plus, t - ee_last[q]);
                ee_last[q] = t;
                ee_w[q] = clip(ee_w[q] + A_plus * ee_apre[q], w_min, w_max);
            }
        }
        /* stimulation pulses */
        for (int k = 0; k < np; k++) {
            const int e = pulsing[k];
            const double kick = stim_gain * el_amp[e];
            for (int r = stim_row[e]; r < stim_row[e + 1]; r++) v[stim_col[r]] += kick * stim_c[r];
        }
        /* resets */
        for (int k = 0; k < ns; k++) {
            const int i = ring[(size_t)slot * n + k];
            const double age = t_last[i] - t;
            v[i] = c[i];
            u[i] += d[i];
            x_dep[i] = 1.0 - (1.0 - x_dep[i]) * exp(age / tau_rec_dep);
            eff_dep[i] = stp_on * x_dep[i] + (1.0 - stp_on);
            x_dep[i] *= 1.0 - U_dep;
            u_fac[i] = u_fac[i] * exp(age / tau_facil);
            u_fac[i] += U_fac * (1.0 - u_fac[i]);
            x_fac[i] = 1.0 - (1.0 - x_fac[i]) * exp(age / tau_rec_fac);
            eff_fac[i] = stp_on * u_fac[i] * x_fac[i] / U_fac + (1.0 - stp_on);
            x_fac[i] *= 1.0 - u_fac[i];
            apost[i] = apost[i] * exp(age / tau_minus) + 1.0;
            rate_est[i] = rate_est[i] * exp(age / tau_homeo) + 1.0 / tau_homeo;
            t_last[i] = t;
            n_spikes[i]++;
        }
        spikes += ns;
        for (int k = 0; k < np; k++) {   /* periodic pulses keep their phase */
            const int e = pulsing[k];
            el_next[e] += 1.0 / el_rate[e];
            pulses++;
        }
        /* end: homeostatic scaling */
        if (homeo_on != 0.0 && s % homeo_steps == 0) {
            for (int i = 0; i < n_exc; i++) {
                const double r = rate_est[i] * exp((t_last[i] - t) / tau_homeo);
                homeo_f[i] = 1.0 + homeo_rate * (homeo_target - r) / homeo_target;
            }
            for (long long q = 0; q < m_ee; q++)
                ee_w[q] = clip(ee_w[q] * homeo_f[ee_post[q]], w_min, w_max);
        }
    }
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cs1);
    clock_gettime(CLOCK_MONOTONIC, &ts1);
    double loop_s = (double)(ts1.tv_sec - ts0.tv_sec) + 1e-9 * (double)(ts1.tv_nsec - ts0.tv_nsec);
    double cpu_s = (double)(cs1.tv_sec - cs0.tv_sec) + 1e-9 * (double)(cs1.tv_nsec - cs0.tv_nsec);
    double check = 0.0;
    for (long long q = 0; q < m_ee; q++) check += ee_w[q];
    for (int i = 0; i < n; i++) check += v[i] * 1e-6;
    printf("loop_s %.6f cpu_s %.6f spikes %lld events %lld pulses %lld synapses %lld max_delay_steps %d "
           "checksum %.9g\n", loop_s, cpu_s, spikes, events, pulses, m, dmax, check);
    return 0;
}
