package dev.tessera.coordinator.run;

import dev.tessera.worker.io.AtomicFiles;
import org.jfree.chart.ChartFactory;
import org.jfree.chart.ChartUtils;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.plot.PlotOrientation;
import org.jfree.chart.plot.XYPlot;
import org.jfree.chart.renderer.xy.XYLineAndShapeRenderer;
import org.jfree.data.xy.XYSeries;
import org.jfree.data.xy.XYSeriesCollection;

import java.awt.BasicStroke;
import java.awt.Color;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.List;

/** loss.png: train loss per step and validation loss per evaluation, against step. */
public final class LossPlot {

    static {
        // Training runs on servers without a display; AWT must not try to open one.
        if (System.getProperty("java.awt.headless") == null) {
            System.setProperty("java.awt.headless", "true");
        }
    }

    public static final int WIDTH = 1000;
    public static final int HEIGHT = 560;

    /** Enough points to look exact at this width; long runs are thinned to keep rendering fast. */
    private static final int MAX_POINTS = 4000;

    private LossPlot() {
    }

    public static void write(Path png, LossHistory history, String title) {
        XYSeriesCollection dataset = new XYSeriesCollection();
        dataset.addSeries(series("train loss", history.train()));
        dataset.addSeries(series("validation loss", history.validation()));
        JFreeChart chart = ChartFactory.createXYLineChart(title, "step", "loss (nats/token)", dataset,
                PlotOrientation.VERTICAL, true, false, false);
        style(chart);
        try {
            ByteArrayOutputStream bytes = new ByteArrayOutputStream();
            ChartUtils.writeChartAsPNG(bytes, chart, WIDTH, HEIGHT);
            AtomicFiles.writeBytes(png, bytes.toByteArray());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + png, e);
        }
    }

    private static XYSeries series(String name, List<LossHistory.Point> points) {
        XYSeries series = new XYSeries(name, true, true);
        int stride = Math.max(1, (points.size() + MAX_POINTS - 1) / MAX_POINTS);
        for (int i = 0; i < points.size(); i++) {
            LossHistory.Point p = points.get(i);
            boolean keep = i % stride == 0 || i == points.size() - 1;
            if (keep && Double.isFinite(p.loss())) {
                series.addOrUpdate(p.step(), p.loss()); // a resumed step replaces its earlier value
            }
        }
        return series;
    }

    private static void style(JFreeChart chart) {
        XYPlot plot = chart.getXYPlot();
        plot.setBackgroundPaint(Color.WHITE);
        plot.setDomainGridlinePaint(Color.LIGHT_GRAY);
        plot.setRangeGridlinePaint(Color.LIGHT_GRAY);
        XYLineAndShapeRenderer renderer = new XYLineAndShapeRenderer();
        renderer.setSeriesPaint(0, new Color(0x1f, 0x77, 0xb4));
        renderer.setSeriesStroke(0, new BasicStroke(1.2f));
        renderer.setSeriesShapesVisible(0, false);
        renderer.setSeriesPaint(1, new Color(0xd6, 0x27, 0x28));
        renderer.setSeriesStroke(1, new BasicStroke(2.0f));
        renderer.setSeriesShapesVisible(1, true); // evaluations are sparse: show each one
        plot.setRenderer(renderer);
        ((org.jfree.chart.axis.NumberAxis) plot.getRangeAxis()).setAutoRangeIncludesZero(false);
    }
}
