//! SVG bar charts (plotters, SVG backend only) for the benchmark page.

use std::error::Error;
use std::path::Path;

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::types::RangedCoordusize;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Who wrote the code a bar measures; picks its colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// flowline.
    Flowline,
    /// A hand-written Rust peer.
    Hand,
    /// Python asyncio.
    Python,
    /// A reference figure (sync floor, process floor).
    Reference,
}

impl Kind {
    /// Guesses the kind from a case's name and runtime.
    pub fn of(name: &str, runtime: &str) -> Kind {
        let lower = name.to_lowercase();
        if runtime == "python" {
            Kind::Python
        } else if lower.contains("flowline") {
            Kind::Flowline
        } else if lower.contains("floor") {
            Kind::Reference
        } else {
            Kind::Hand
        }
    }

    fn color(self) -> RGBColor {
        match self {
            Kind::Flowline => RGBColor(31, 119, 180),
            Kind::Hand => RGBColor(255, 127, 14),
            Kind::Python => RGBColor(44, 160, 44),
            Kind::Reference => RGBColor(150, 150, 150),
        }
    }
}

/// One bar: label, value, kind.
#[derive(Debug, Clone)]
pub struct Bar {
    /// Shown left of the bar.
    pub label: String,
    /// The bar's length (must be > 0 on a log scale; non-positive bars are drawn empty).
    pub value: f64,
    /// Colour.
    pub kind: Kind,
}

const LEGEND: [(Kind, &str); 4] = [
    (Kind::Flowline, "flowline"),
    (Kind::Hand, "hand-written Rust"),
    (Kind::Python, "Python asyncio"),
    (Kind::Reference, "reference (floor)"),
];

/// Draws a horizontal bar chart to `path`: log scale when the values span
/// more than 30×, linear otherwise. `unit` labels the axis and the values.
///
/// # Errors
///
/// When the SVG cannot be drawn or written.
pub fn bar_chart(path: &Path, title: &str, unit: &str, bars: &[Bar]) -> Result<(), Box<dyn Error>> {
    if bars.is_empty() {
        return Ok(());
    }
    let positive: Vec<f64> = bars.iter().map(|b| b.value).filter(|v| *v > 0.0).collect();
    let max = positive.iter().copied().fold(f64::MIN_POSITIVE, f64::max);
    let min = positive.iter().copied().fold(max, f64::min);
    let height = 110 + 30 * bars.len() as u32;
    let root = SVGBackend::new(path, (1000, height)).into_drawing_area();
    root.fill(&WHITE)?;
    if max / min > 30.0 {
        let lo = 10f64.powf(min.log10().floor());
        let hi = 10f64.powf((max * 3.0).log10().ceil());
        let axis = format!("{unit} (log scale; shorter is better)");
        draw(&root, title, &axis, unit, bars, (lo..hi).log_scale(), lo)?;
    } else {
        let axis = format!("{unit} (shorter is better)");
        draw(&root, title, &axis, unit, bars, 0f64..max * 1.25, 0.0)?;
    }
    root.present()?;
    Ok(())
}

fn draw<X>(
    root: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    title: &str,
    axis: &str,
    unit: &str,
    bars: &[Bar],
    x: X,
    origin: f64,
) -> Result<(), Box<dyn Error>>
where
    X: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
{
    let n = bars.len();
    let (top, bottom) = root.split_vertically(root.dim_in_pixel().1 - 24);
    let mut lx = 390;
    for (kind, name) in LEGEND {
        bottom.draw(&Rectangle::new(
            [(lx, 4), (lx + 12, 16)],
            kind.color().filled(),
        ))?;
        bottom.draw(&Text::new(
            name,
            (lx + 16, 4),
            ("sans-serif", 13).into_font(),
        ))?;
        lx += 40 + 7 * name.len() as i32;
    }
    let mut chart = ChartBuilder::on(&top)
        .caption(title, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(380)
        // An integer range covers both ends: n bars need 0..n-1.
        .build_cartesian_2d(x, RangedCoordusize::from(0..n.max(2) - 1).into_segmented())?;
    let label_of = |v: &SegmentValue<usize>| match v {
        SegmentValue::CenterOf(i) if *i < n => bars[n - 1 - *i].label.clone(),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n)
        .y_label_formatter(&label_of)
        .x_desc(axis)
        .label_style(("sans-serif", 12))
        .draw()?;
    chart.draw_series(bars.iter().enumerate().map(|(k, b)| {
        let i = n - 1 - k;
        let end = if b.value > origin { b.value } else { origin };
        let mut r = Rectangle::new(
            [
                (origin, SegmentValue::Exact(i)),
                (end, SegmentValue::Exact(i + 1)),
            ],
            b.kind.color().filled(),
        );
        r.set_margin(5, 5, 0, 0);
        r
    }))?;
    chart.draw_series(bars.iter().enumerate().map(|(k, b)| {
        let i = n - 1 - k;
        let end = if b.value > origin { b.value } else { origin };
        Text::new(
            format!(" {} {unit}", fmt_value(b.value)),
            (end, SegmentValue::CenterOf(i)),
            ("sans-serif", 12)
                .into_font()
                .into_text_style(root)
                .pos(Pos::new(HPos::Left, VPos::Center)),
        )
    }))?;
    Ok(())
}

/// A value with three significant digits or so.
pub fn fmt_value(v: f64) -> String {
    let a = v.abs();
    if a >= 1000.0 {
        format!("{v:.0}")
    } else if a >= 100.0 {
        format!("{v:.1}")
    } else if a >= 10.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}
