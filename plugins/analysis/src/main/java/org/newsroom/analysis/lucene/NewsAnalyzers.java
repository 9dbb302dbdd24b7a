package org.newsroom.analysis.lucene;

import org.apache.lucene.analysis.Analyzer;
import org.apache.lucene.analysis.CharArraySet;
import org.apache.lucene.analysis.LowerCaseFilter;
import org.apache.lucene.analysis.StopFilter;
import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.Tokenizer;
import org.apache.lucene.analysis.cjk.CJKBigramFilter;
import org.apache.lucene.analysis.cn.smart.HMMChineseTokenizer;
import org.apache.lucene.analysis.cn.smart.SmartChineseAnalyzer;
import org.apache.lucene.analysis.en.EnglishAnalyzer;
import org.apache.lucene.analysis.en.EnglishPossessiveFilter;
import org.apache.lucene.analysis.en.PorterStemFilter;
import org.apache.lucene.analysis.miscellaneous.SetKeywordMarkerFilter;
import org.apache.lucene.analysis.ru.RussianAnalyzer;
import org.apache.lucene.analysis.snowball.SnowballFilter;
import org.apache.lucene.analysis.standard.StandardTokenizer;
import org.tartarus.snowball.ext.RussianStemmer;

/** The Lucene analysis chains behind the plugin's named components. */
public final class NewsAnalyzers {
    private NewsAnalyzers() {}

    /** Words the Porter stemmer would damage in news text ("news" -> "new"); kept as they are. */
    public static final CharArraySet ENGLISH_PROTECTED = CharArraySet.unmodifiableSet(
        new CharArraySet(java.util.List.of("news"), false));

    /** Russian stopwords with ё folded to е, matching what {@link YoFoldingFilter} emits. */
    public static final CharArraySet RUSSIAN_STOPWORDS = foldedRussianStopwords();

    private static CharArraySet foldedRussianStopwords() {
        CharArraySet folded = new CharArraySet(RussianAnalyzer.getDefaultStopSet().size(), false);
        for (Object word : RussianAnalyzer.getDefaultStopSet()) {
            folded.add(new String((char[]) word).replace('ё', 'е'));
        }
        return CharArraySet.unmodifiableSet(folded);
    }

    /** English stemming (Porter) after possessive removal: the chain of Elasticsearch's "english" analyzer. */
    public static TokenStream englishStem(TokenStream in) {
        return new PorterStemFilter(new SetKeywordMarkerFilter(in, ENGLISH_PROTECTED));
    }

    /** Russian Snowball stemming of lowercase text, ё folded first. */
    public static TokenStream russianStem(TokenStream in) {
        return new SnowballFilter(new YoFoldingFilter(in), new RussianStemmer());
    }

    /**
     * English: possessives removed, lowercase, English stopwords, Porter stemming. Han characters
     * (which the standard tokenizer emits one by one) become bigrams, as in the Russian chain: a
     * search over every language's field (Kibana's search bar) then never matches 普京 by its
     * characters in 北京.
     */
    public static Analyzer english() {
        return new Analyzer() {
            @Override
            protected TokenStreamComponents createComponents(String fieldName) {
                Tokenizer source = new StandardTokenizer();
                TokenStream result = new EnglishPossessiveFilter(source);
                result = new LowerCaseFilter(result);
                result = new CJKBigramFilter(result);  // Han characters as bigrams
                result = new StopFilter(result, EnglishAnalyzer.ENGLISH_STOP_WORDS_SET);
                return new TokenStreamComponents(source, englishStem(result));
            }

            @Override
            protected TokenStream normalize(String fieldName, TokenStream in) {
                return new LowerCaseFilter(in);
            }
        };
    }

    public static Analyzer russian() {
        return new Analyzer() {
            @Override
            protected TokenStreamComponents createComponents(String fieldName) {
                Tokenizer source = new StandardTokenizer();
                TokenStream result = new LowerCaseFilter(source);
                result = new CJKBigramFilter(result);  // Han characters as bigrams, see english()
                result = new YoFoldingFilter(result);
                result = new StopFilter(result, RUSSIAN_STOPWORDS);
                return new TokenStreamComponents(source, new SnowballFilter(result, new RussianStemmer()));
            }

            @Override
            protected TokenStream normalize(String fieldName, TokenStream in) {
                return new YoFoldingFilter(new LowerCaseFilter(in));
            }
        };
    }

    /**
     * smartcn word segmentation (the chain of Lucene's SmartChineseAnalyzer: HMM segmenter, which also
     * lowercases and folds full-width forms, its punctuation stopwords, Porter for Latin words), without
     * the single letters it cuts other alphabets into ({@link LoneLetterFilter}); then runs of adjacent
     * single Han characters, mostly names missing from its dictionary, become bigrams.
     */
    public static Analyzer chinese() {
        return new Analyzer() {
            @Override
            protected TokenStreamComponents createComponents(String fieldName) {
                Tokenizer source = new HMMChineseTokenizer();
                TokenStream result = new StopFilter(source, SmartChineseAnalyzer.getDefaultStopSet());
                result = new LoneLetterFilter(result);
                result = new PorterStemFilter(result);
                result = new HanSingleCharTypeFilter(result);
                result = new CJKBigramFilter(result, CJKBigramFilter.HAN, false);
                return new TokenStreamComponents(source, result);
            }

            @Override
            protected TokenStream normalize(String fieldName, TokenStream in) {
                return new LowerCaseFilter(in);
            }
        };
    }
}
