// Gradients by Enzyme against hand-written ones, in one program: `ci/bench-autodiff` builds
// it with the fork (`rustc +patchq`, built with `patchq build --enzyme`) and runs it. Each
// kernel runs 15 times after a warm-up; the median times and their ratio are printed, with a
// check that both give the same numbers.

#![feature(autodiff)]

use std::autodiff::autodiff;
use std::hint::black_box;
use std::time::Instant;

// 1. A vector loss: Σ x²·sin x + x/2 over 2²⁰ values.
#[autodiff(d_loss, Reverse, Duplicated, Active)]
fn loss(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for &v in x {
        s += v * v * v.sin() + v / 2.0;
    }
    s
}

fn loss_grad_by_hand(x: &[f64], dx: &mut [f64]) {
    for (d, &v) in dx.iter_mut().zip(x) {
        *d += 2.0 * v * v.sin() + v * v * v.cos() + 0.5;
    }
}

// 2. A dense layer's reverse pass: L = Σ c·tanh(W·x + b), gradients for W and b.
const N: usize = 128;

struct Layer {
    w: [[f64; N]; N],
    b: [f64; N],
}

#[autodiff(d_layer, Reverse, Duplicated, Const, Const, Active)]
fn layer(p: &Layer, x: &[f64; N], c: &[f64; N]) -> f64 {
    let mut l = 0.0;
    for i in 0..N {
        let mut z = p.b[i];
        for j in 0..N {
            z += p.w[i][j] * x[j];
        }
        l += c[i] * z.tanh();
    }
    l
}

fn layer_grad_by_hand(p: &Layer, dp: &mut Layer, x: &[f64; N], c: &[f64; N]) {
    for i in 0..N {
        let mut z = p.b[i];
        for j in 0..N {
            z += p.w[i][j] * x[j];
        }
        let t = z.tanh();
        let dz = c[i] * (1.0 - t * t);
        dp.b[i] += dz;
        for j in 0..N {
            dp.w[i][j] += dz * x[j];
        }
    }
}

// 3. A batched forward Jacobian: the four partial derivatives of f: R⁴ → R at 2¹⁶ points,
// as four tangents in one call.
#[autodiff(d_f4, Forward, 4, Dual, DualOnly)]
fn f4(x: &[f64; 4]) -> f64 {
    x[0] * x[1] * x[2].sin() + x[3].exp() * x[0]
}

fn f4_grad_by_hand(x: &[f64; 4]) -> [f64; 4] {
    [
        x[1] * x[2].sin() + x[3].exp(),
        x[0] * x[2].sin(),
        x[0] * x[1] * x[2].cos(),
        x[3].exp() * x[0],
    ]
}

const E: [[f64; 4]; 4] =
    [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]];

fn median(mut times: Vec<f64>) -> f64 {
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    times[times.len() / 2]
}

fn time(mut f: impl FnMut()) -> f64 {
    f();
    median(
        (0..15)
            .map(|_| {
                let start = Instant::now();
                f();
                start.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

fn report(name: &str, enzyme: f64, hand: f64) {
    println!("| {name} | {:.3} ms | {:.3} ms | {:.2} |", enzyme * 1e3, hand * 1e3, enzyme / hand);
}

fn main() {
    println!("| gradient | Enzyme (median of 15) | by hand | ratio |");
    println!("| --- | --- | --- | --- |");

    let x: Vec<f64> = (0..1 << 20).map(|i| (i as f64 * 1e-5).cos() * 3.0).collect();
    let (mut da, mut db) = (vec![0.0; x.len()], vec![0.0; x.len()]);
    d_loss(&x, &mut da, 1.0);
    loss_grad_by_hand(&x, &mut db);
    assert!(da.iter().zip(&db).all(|(a, b)| close(*a, *b)));
    let enzyme = time(|| {
        d_loss(black_box(&x), black_box(&mut da), 1.0);
    });
    let hand = time(|| loss_grad_by_hand(black_box(&x), black_box(&mut db)));
    report("vector loss, 2^20 f64", enzyme, hand);

    let mut p = Box::new(Layer { w: [[0.0; N]; N], b: [0.0; N] });
    for i in 0..N {
        p.b[i] = (i as f64 * 0.1).sin() * 0.1;
        for j in 0..N {
            p.w[i][j] = ((i * N + j) as f64 * 0.37).sin() * 0.05;
        }
    }
    let xs: [f64; N] = std::array::from_fn(|j| (j as f64 * 0.3).cos());
    let c: [f64; N] = std::array::from_fn(|i| 1.0 + (i % 3) as f64);
    let mut dp1 = Box::new(Layer { w: [[0.0; N]; N], b: [0.0; N] });
    let mut dp2 = Box::new(Layer { w: [[0.0; N]; N], b: [0.0; N] });
    d_layer(&p, &mut dp1, &xs, &c, 1.0);
    layer_grad_by_hand(&p, &mut dp2, &xs, &c);
    assert!(dp1.b.iter().zip(&dp2.b).all(|(a, b)| close(*a, *b)));
    assert!(dp1.w.iter().flatten().zip(dp2.w.iter().flatten()).all(|(a, b)| close(*a, *b)));
    let enzyme = time(|| {
        for _ in 0..100 {
            d_layer(black_box(&p), black_box(&mut dp1), black_box(&xs), &c, 1.0);
        }
    });
    let hand = time(|| {
        for _ in 0..100 {
            layer_grad_by_hand(black_box(&p), black_box(&mut dp2), black_box(&xs), &c);
        }
    });
    report("dense layer 128x128, reverse, x100", enzyme, hand);

    let points: Vec<[f64; 4]> = (0..1 << 16)
        .map(|i| {
            let t = i as f64 * 1e-4;
            [t.sin(), t.cos(), 1.0 + t, 0.1 * t]
        })
        .collect();
    for x in &points[..100] {
        let j = d_f4(x, &E[0], &E[1], &E[2], &E[3]);
        let h = f4_grad_by_hand(x);
        assert!(j.iter().zip(&h).all(|(a, b)| close(*a, *b)));
    }
    let mut sink = 0.0;
    let enzyme = time(|| {
        for x in black_box(&points) {
            sink += d_f4(x, &E[0], &E[1], &E[2], &E[3]).iter().sum::<f64>();
        }
    });
    let hand = time(|| {
        for x in black_box(&points) {
            sink += f4_grad_by_hand(x).iter().sum::<f64>();
        }
    });
    black_box(sink);
    report("batched forward Jacobian (width 4), 2^16 points", enzyme, hand);
}
